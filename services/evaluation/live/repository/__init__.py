"""Every statement of the live path, one module per store: the events, corrections, effects
and dead letters (`events`), the statuses (`statuses`), the work-record indicators
(`indicators`) and the upkeep rows (`upkeep`)."""
