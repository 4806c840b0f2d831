"""The streaming shell around the engine: Faust agents on Kafka. The only package that imports faust."""
