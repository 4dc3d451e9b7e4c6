"""Data parallelism over a device ``Mesh``: one axis, ``data``; the model replicated, each batch split over it.

The JAX target keeps one jit-compiled step (no ``pmap``): parameters, model state
and optimizer state are placed replicated (``P()``), the global index batch sharded
on ``data`` (``P('data')``), so the batch it gathers from the replicated split is
sharded too and XLA's partitioner turns the sums over the batch (the loss's mean,
the gradients, the metric sums, BatchNorm's synchronized statistics) into
all-reduces. What comes out is global, as one device computes it: the driver and
the metrics code are the same for every device count.

Every array goes through ``jax.make_array_from_callback`` (each device takes its
slice of the host's global array), which is the same code whether the mesh's
devices belong to one process or to several (multi-host: every process holds the
same global batches and split, so each fills its own devices). A batch whose size
the device count does not divide (the epoch's last) is placed replicated instead:
every device computes the whole batch, which gives the same numbers as the split
step; sharding it unevenly would need padding, and padded rows would enter
BatchNorm's statistics and the loss's count.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dsl import UsageError

from ..host_devices import more_devices_hint

AXIS = "data"


def mesh_devices(count: int | None) -> list:
    """The first ``count`` local devices of every process (all of them for None), in process order."""
    local = jax.local_devices()
    count = len(local) if count is None else count
    if count > len(local):
        raise UsageError(f"--devices {count}: JAX has {len(local)} {local[0].platform} device"
                         f"{'s' * (len(local) != 1)} in this process; {more_devices_hint(count)}")
    by_process = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    return [d for p in sorted(by_process) for d in by_process[p][:count]]


class DataMesh:
    """A one-axis mesh and the placements the target's steps take."""

    def __init__(self, devices: list):
        self.mesh = Mesh(np.array(devices), (AXIS,))
        self.size = len(devices)
        self.replicated = NamedSharding(self.mesh, P())
        self.multiprocess = jax.process_count() > 1

    def batch_sharding(self, size: int, leading: int = 0) -> NamedSharding:
        """Split on ``data`` when ``size`` divides evenly over the devices, replicated otherwise; ``leading``
        unsplit axes before the batch axis (the scanned loop's step axis)."""
        if size % self.size:
            return self.replicated
        return NamedSharding(self.mesh, P(*(None,) * leading, AXIS))

    def put_batch(self, index: np.ndarray, leading: int = 0) -> jax.Array:
        """A global index batch (or [steps, batch] stack of them), split on ``data``."""
        return _from_host(np.asarray(index), self.batch_sharding(index.shape[leading], leading))

    def replicate(self, tree):
        """Every array of ``tree`` (numpy, or JAX arrays on any devices) replicated over the mesh."""
        return jax.tree.map(lambda a: _replicated_leaf(a, self.replicated), tree)

    def local(self, tree):
        """``tree``'s replicated arrays as this process's copy (multi-process arrays cannot be read whole)."""
        if not self.multiprocess:
            return tree
        return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


def _replicated_leaf(a, sharding: NamedSharding):
    if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_replicated_leaf(jax.random.key_data(a), sharding),
                                        impl=jax.random.key_impl(a))
    return _from_host(np.asarray(a.addressable_data(0) if isinstance(a, jax.Array) else a), sharding)


def _from_host(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
