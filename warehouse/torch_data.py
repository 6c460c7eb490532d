"""PyTorch integration of the loader (torch stays optional: only this module imports it).

`LoaderDataset` is an `IterableDataset` yielding whole batches, so build the DataLoader with
`batch_size=None`. Each DataLoader worker builds its own `DatasetReader` with its worker id, so the
rank's batches arrive in the global order whatever `num_workers` is. It has `state_dict` /
`load_state_dict`, which torchdata's `StatefulDataLoader` calls in each worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import torch
from torch.utils.data import IterableDataset, get_worker_info

from medcurate.warehouse.loader import DatasetReader


def _distributed_placement() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class LoaderDataset(IterableDataset):
    """Batches of a published version for one rank; rank and world size default to torch.distributed's."""

    def __init__(
        self,
        version_dir: str,
        transform: Callable[[pa.RecordBatch], Any] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        **options: Any,
    ) -> None:
        placement = _distributed_placement()
        self.version_dir = version_dir
        self.transform = transform
        self.rank = placement[0] if rank is None else rank
        self.world_size = placement[1] if world_size is None else world_size
        self.options = options
        self._state: Any = None
        self._reader: DatasetReader | None = None

    def _make_reader(self) -> DatasetReader:
        info = get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info else (0, 0)
        reader = DatasetReader(
            self.version_dir,
            rank=self.rank,
            world_size=self.world_size,
            worker_id=worker_id,
            num_workers=num_workers,
            **self.options,
        )
        if self._state is not None:
            reader.load_state_dict(self._state)
        return reader

    def __iter__(self) -> Iterator[Any]:
        self._reader = self._make_reader()
        for batch in self._reader:
            yield self.transform(batch) if self.transform else batch
        self._state = None  # the epoch is over: a new iteration starts the (next) epoch afresh

    def set_epoch(self, epoch: int) -> None:
        self.options["epoch"] = epoch
        self._state = None

    def state_dict(self, batches: int | None = None) -> dict[str, Any]:
        """The reader's state (called by StatefulDataLoader in each worker).

        With a plain DataLoader the workers' readers are out of reach: pass `batches`, the number
        of batches this rank's loop consumed since the start or last resume.
        """
        reader = self._reader if self._reader is not None and batches is None else self._make_reader()
        return reader.state_dict(batches=batches)

    def load_state_dict(self, state: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Resume from one reader state, several, or a whole StatefulDataLoader state dict."""
        self._state = state
