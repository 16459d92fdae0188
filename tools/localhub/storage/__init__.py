"""What the hub keeps: SQLite (devices, twins, C2D, telemetry, subscriptions, jobs), the state
folder (policies, runtime record), the development CA, blob storage (Azure or Azurite)."""
