"""The gRPC edge: servicers translate requests to domain calls and back."""
