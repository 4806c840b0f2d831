"""The Redis serving layer (written by the worker, read by stores and senders) and the HTTP API."""
