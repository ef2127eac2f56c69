"""Plain pieces every slice shares: months, table schemas, SQL files and transactions, H3 cells, geometry and
the settings."""
