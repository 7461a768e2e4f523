"""The working-day calendar: which days are worked in China, and the last day of a limit
counted on it."""
