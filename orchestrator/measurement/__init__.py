"""How the programme is measured: KPIs and lift, the report and dashboard, journey maps, timelines, products,
broadcast occurrences and segment audiences. Reads what the engine decided; decides nothing."""
