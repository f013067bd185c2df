"""Storage: engine, tables, migrations and one repository module per aggregate."""
