"""A CRI fuzz and chaos harness: seeded random, concurrent CRI calls against a real pycrid while its
agent and helpers are SIGKILLed, then invariants and a leak check (driver.py; hack/chaos.sh)."""
