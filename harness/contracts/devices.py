"""Device helpers that generators, detectors and the timing code share."""

def synchronize(device: str) -> None:
    """Wait for queued GPU work so the clock reads finished work only."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
