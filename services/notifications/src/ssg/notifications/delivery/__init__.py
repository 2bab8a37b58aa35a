"""The nameko delivery process (eventlet): imports no grpcio and no MongoDB driver."""
