# Runs after every reset, before main.py. Kept minimal: a fault here stops main.py from running.
import gc

gc.collect()
