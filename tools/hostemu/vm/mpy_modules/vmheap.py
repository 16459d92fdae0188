# Heap reports from device code running in the hostemu VM (this module exists only there):
#
#     try:
#         import vmheap
#     except ImportError:
#         vmheap = None
#     ...
#     if vmheap:
#         vmheap.probe("connected")
#
# probe(label): gc.collect(), then report gc.mem_alloc()/gc.mem_free() (the live heap).
# sample(label): report without collecting (garbage included), e.g. to catch a peak.

import _hostemu

probe = _hostemu.probe
sample = _hostemu.sample
heap_total = _hostemu.heap_total
