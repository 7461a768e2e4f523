"""Early warnings: found in the visits by a pure finder (`finder`, `changes`), raised and
cleared as batches are applied (`upkeep`), stored (`repository`) and published (`relay`)."""
