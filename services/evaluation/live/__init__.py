"""The live path: each batch of the petition-event topic applied in one unit of work (events,
corrections, their effects, the statuses and indicators they change), and the upkeep beside it
as time passes and the registry changes."""
