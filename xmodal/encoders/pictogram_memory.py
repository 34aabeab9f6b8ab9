"""The pictogram tower's memory of its training pictures (``PictogramConfig.memory_size``).

A picture in a style the network never saw still lands near training pictures of the same
thing; their names are the best guess at what it shows. So every picture's unit vector ``u`` is
moved towards the names of its ``memory_k`` nearest remembered pictures (cosine between unit
vectors, weights ``softmax(memory_beta * cos)``):

    u' = u + memory_weight * unit(sum_j w_j * name_j)

-- a cache model as in Tip-Adapter (Zhang et al., ECCV 2022) with caption vectors as the values,
so ``u'`` stays a plain vector for any inner-product index. Keys (the remembered pictures' unit
vectors) and the name table are stored as product-quantisation codes (Jegou et al. 2011; one
byte per ``embed_dim / pq_subvectors`` dimensions, codebooks from FAISS at fitting time) and
decoded once, on first use; the name table doubles as the hubness bank.

With ``memory_text_weight`` the memory also works the other way, for a text query ``t`` against
indexed pictures: the mean remembered picture of each name is a prototype, and ``t`` moves
towards the prototypes of its ``memory_text_k`` nearest names (softmax(``memory_text_beta`` *
cos) weights), minus the mean remembered picture so that an unrelated picture's score keeps its
scale in mixed result lists:

    t' = t + memory_text_weight * (unit(sum_j a_j * prototype_j) - mean key)

A held-out picture looks like the training pictures of its name in other sets far more often
than its name's words alone say (cross-modal query expansion). Fitted by
:mod:`xmodal.train.memory`. Imported only when a model has a memory (it imports torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

NameLists = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def pq_decode(codes: torch.Tensor, books: torch.Tensor) -> torch.Tensor:
    """uint8 codes (n, m) and codebooks (m, 256, d/m) -> unit float32 rows (n, d)."""
    m = books.shape[0]
    parts = books.float()[torch.arange(m), codes.long()]  # (n, m, d/m)
    return nn.functional.normalize(parts.reshape(codes.shape[0], -1), dim=-1)


def _loaded(module: MemoryBuffers, _keys: Any) -> None:
    """After loading: forget decoded tables; name ids must point into the name table (a
    ValueError here becomes the encoder's ModelError)."""
    module._decoded = module._prototypes = None
    names = module.names
    if names.numel() and (int(names.min()) < 0 or int(names.max()) >= module.table_codes.shape[0]):
        raise ValueError("memory name ids point outside the name table")


class MemoryBuffers(nn.Module):
    """The saved codes, codebooks and name ids, and the pull they define."""

    key_codes: torch.Tensor
    key_books: torch.Tensor
    names: torch.Tensor
    table_codes: torch.Tensor
    table_books: torch.Tensor

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        m, sub = cfg.pq_subvectors, cfg.embed_dim // cfg.pq_subvectors
        self.k, self.beta, self.weight = cfg.memory_k, cfg.memory_beta, cfg.memory_weight
        self.text_k, self.text_beta = cfg.memory_text_k, cfg.memory_text_beta
        self.text_weight = cfg.memory_text_weight
        self.register_buffer("key_codes", torch.zeros(cfg.memory_size, m, dtype=torch.uint8))
        self.register_buffer("key_books", torch.zeros(m, 256, sub))
        self.register_buffer("names", torch.zeros(cfg.memory_size, dtype=torch.int32))
        self.register_buffer("table_codes", torch.zeros(cfg.hubness_bank, m, dtype=torch.uint8))
        self.register_buffer("table_books", torch.zeros(m, 256, sub))
        self._decoded: tuple[torch.Tensor, torch.Tensor] | None = None
        self._prototypes: NameLists | None = None
        self.register_load_state_dict_post_hook(_loaded)

    def _apply(self, fn: Any, recurse: bool = True) -> MemoryBuffers:
        self._decoded = self._prototypes = None  # .to(), .half(), ...: decode again from the converted buffers
        return super()._apply(fn, recurse)

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._decoded is None:
            # normal tensors even when first used under inference_mode (two threads may both
            # decode: the same result, one of them kept)
            with torch.inference_mode(False), torch.no_grad():
                keys = pq_decode(self.key_codes, self.key_books)
                self._decoded = keys, pq_decode(self.table_codes, self.table_books)
        return self._decoded

    def table(self) -> torch.Tensor:
        """The decoded name table (unit rows), also the hubness bank."""
        return self._tables()[1]

    def pull(self, unit: torch.Tensor) -> torch.Tensor:
        """``unit`` (b, d) unit vectors -> ``unit + weight * unit(weighted names)`` (not unit)."""
        keys, table = self._tables()
        sims, idx = (unit @ keys.t()).topk(self.k, dim=-1)
        w = torch.softmax(self.beta * sims, dim=-1)
        guess = (w.unsqueeze(-1) * table[self.names[idx].long()]).sum(dim=1)
        return unit + self.weight * nn.functional.normalize(guess, dim=-1)

    def _name_lists(self) -> NameLists:
        """Numpy views of the decoded keys and name table, the remembered pictures grouped by
        name (``order[starts[j]:starts[j + 1]]`` are name j's), which names have pictures and
        the mean key. A name's prototype is made only when a query needs it (a full table of
        them would cost 37 MB and 0.2 s on first use)."""
        if self._prototypes is None:
            keys, table = self._tables()
            names = self.names.numpy().astype(np.int64)
            order = np.argsort(names, kind="stable")
            counts = np.bincount(names, minlength=table.shape[0])
            starts = np.concatenate([[0], np.cumsum(counts)])
            keys_np = keys.numpy()
            self._prototypes = keys_np, table.numpy(), order, starts, counts > 0, keys_np.mean(axis=0)
        return self._prototypes

    def text_query(self, text: np.ndarray) -> np.ndarray:
        """``text`` (b, d) unit caption vectors -> their vectors for scoring indexed pictures."""
        keys, table, order, starts, has, mean = self._name_lists()
        # one query: numpy's own loop, not BLAS, whose idle threads would then spin against the
        # text model's next forward pass on 2 cores (measured: +1.6 ms a query against +11 ms)
        sims = np.einsum("bd,nd->bn", text, table) if len(text) < 8 else text @ table.T
        sims = np.where(has, sims, -np.inf)
        k = min(self.text_k, int(has.sum()))
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, idx, axis=1)
        a = np.exp(self.text_beta * (top - top.max(axis=1, keepdims=True)))
        a /= a.sum(axis=1, keepdims=True)
        guess = np.zeros_like(text, dtype=np.float32)
        for b, (names, weights) in enumerate(zip(idx, a, strict=True)):
            for j, w in zip(names, weights, strict=True):
                proto = keys[order[starts[j] : starts[j + 1]]].sum(axis=0)
                guess[b] += w * proto / max(float(np.linalg.norm(proto)), 1e-12)
        guess /= np.maximum(np.linalg.norm(guess, axis=1, keepdims=True), 1e-12)
        return (text + self.text_weight * (guess - mean)).astype(np.float32)
