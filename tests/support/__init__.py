"""What the tests stand on: a real Redis (support.redis_server), real HTTP targets
(support.target), real htq processes (support.processes), the server in a thread
(support.server), and short ways to do what the server and a worker do (support.api,
support.store). Never a mock."""
