"""`sanwu evaluation rebuild` (`run`): every status, indicator and early warning recomputed from
the petition-event topic into fresh tables (`loader`, `readers`, `warnings`, `repository`),
then swapped in."""
