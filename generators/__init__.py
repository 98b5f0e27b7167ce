"""Generator plug-ins (sources of real and fake faces) and the artifact library."""
