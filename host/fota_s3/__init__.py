"""The release bucket: boto3 behind one small store, and the embedded endpoint's whereabouts."""
