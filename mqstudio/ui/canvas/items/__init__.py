"""Graphics items of the canvas: nodes (exchange, queue, clients, Kafka) and edges. They draw the model
and never write it."""
