# Heap reports to the host, under the name device scripts already use in the VM (vmheap).
import _hostemu

probe = _hostemu.probe
sample = _hostemu.sample
