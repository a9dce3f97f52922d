"""Device resolution, seeded generators and the device-resident CSR every model uses."""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.validation import raise_invalid

__all__ = ["resolve_device", "loading_device", "make_generator", "free_memory", "require_memory", "full_precision",
           "BF16_CAPABILITY", "cpu_bf16_native", "bf16_native", "autocast_bf16", "check_mixed_precision", "no_autocast",
           "DeviceCSR"]

#: Lowest CUDA compute capability whose tensor cores run bfloat16 (Ampere): autocast needs it.
BF16_CAPABILITY = (8, 0)


def resolve_device(device="auto"):
    """Resolve a ``device`` hyper-parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown device string, or CUDA asked for on a machine without it.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise_invalid("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", device)
    else:
        raise_invalid("device", "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device", device, TypeError)
    if dev.type not in ("cpu", "cuda"):
        raise_invalid("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise_invalid("device", "'cpu' or 'auto' on this machine, where CUDA is not available", device)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise_invalid("device", f"a CUDA index below {torch.cuda.device_count()}", device)
    return dev


def loading_device(device, owner="model"):
    """The device a model saved on ``device`` is loaded on here.

    The same device when this machine has it; the CPU when CUDA is not available; ``cuda:0``
    when the saved GPU index is beyond this machine's GPUs. Each fallback warns.

    Parameters
    ----------
    device : str or torch.device
        The fitted ``device_`` as saved.
    owner : str, default="model"
        The name the warning uses.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> loading_device("cpu")
    device(type='cpu')
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"{owner} was fitted on {device}, which is not available here; it is loaded on the CPU.",
                      RuntimeWarning, stacklevel=3)
        return torch.device("cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        warnings.warn(f"{owner} was fitted on {device}, which this machine does not have; it is loaded on "
                      "cuda:0.", RuntimeWarning, stacklevel=3)
        return torch.device("cuda", 0)
    return dev


@contextlib.contextmanager
def full_precision():
    """Float32 matrix products in full precision inside the block, whatever the process set.

    ``torch.set_float32_matmul_precision("high")`` (TF32 on NVIDIA GPUs) or ``"medium"``
    (bfloat16 passes, on GPUs and CPUs alike) keep about three significant digits: enough for
    a network's forward pass, too few for normal equations solved by Cholesky. Closed-form
    solvers build their systems inside this block; the setting is restored on exit. Usable
    as a decorator.

    Examples
    --------
    >>> torch.set_float32_matmul_precision("medium")  # bfloat16 passes where the CPU has them
    >>> with full_precision():
    ...     gram = torch.ones(3, 2).T @ torch.ones(3, 2)
    >>> torch.get_float32_matmul_precision()  # restored on exit
    'medium'
    >>> torch.set_float32_matmul_precision("highest")
    """
    backends = [torch.backends.cuda.matmul, getattr(torch.backends.mkldnn, "matmul", None)]
    backends = [b for b in backends if b is not None and hasattr(b, "fp32_precision")]
    if backends:  # per-backend settings (torch >= 2.9): reading them never fails, whichever API set them
        def get():
            return [b.fp32_precision for b in backends]

        def put(values):
            for b, value in zip(backends, values):
                b.fp32_precision = value

        exact = ["ieee"] * len(backends)
    else:  # torch before 2.9: only the process-wide setting exists
        get, put, exact = torch.get_float32_matmul_precision, torch.set_float32_matmul_precision, "highest"
    saved = get()
    put(exact)
    try:
        yield
    finally:
        put(saved)


@functools.lru_cache(maxsize=None)  # asked at every training step; the answer never changes
def cpu_bf16_native():
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX).

    Examples
    --------
    >>> isinstance(cpu_bf16_native(), bool)
    True
    """
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in ("_is_avx512_bf16_supported",
                                                                             "_is_amx_tile_supported"))


def bf16_native(device):
    """Whether ``device`` runs bfloat16 products natively: a CUDA device of capability >= 8.0
    (:data:`BF16_CAPABILITY`), or a CPU with AVX512-BF16 or AMX.

    Examples
    --------
    >>> bf16_native(torch.device("cpu")) == cpu_bf16_native()
    True
    """
    if device.type == "cpu":
        return cpu_bf16_native()
    return device.type == "cuda" and tuple(torch.cuda.get_device_capability(device)) >= BF16_CAPABILITY


def autocast_bf16(device, mixed_precision):
    """bfloat16 autocast when ``mixed_precision`` is asked on a device that runs it natively; a
    no-op context elsewhere.

    Examples
    --------
    >>> with autocast_bf16(torch.device("cpu"), False):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    if mixed_precision and bf16_native(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_mixed_precision(device, mixed_precision):
    """Whether a fit with ``mixed_precision`` runs under autocast on ``device``.

    A CUDA device below :data:`BF16_CAPABILITY` warns once (``RuntimeWarning``) and runs in
    float32; a CPU without bfloat16 instructions runs in float32 silently.

    Examples
    --------
    >>> check_mixed_precision(torch.device("cpu"), False)
    False
    """
    if not mixed_precision or device.type not in ("cuda", "cpu"):
        return False
    if bf16_native(device):
        return True
    if device.type == "cpu":
        return False
    major, minor = torch.cuda.get_device_capability(device)
    warnings.warn(f"mixed_precision=True needs a CUDA device of compute capability {BF16_CAPABILITY[0]}."
                  f"{BF16_CAPABILITY[1]} or higher for bfloat16; {device} has {major}.{minor}, so the model "
                  "runs in float32 (set mixed_precision=False to silence this warning).", RuntimeWarning,
                  stacklevel=3)
    return False


def no_autocast(device):
    """A context that turns off any autocast active on ``device``'s type.

    Examples
    --------
    >>> with torch.autocast("cpu", dtype=torch.bfloat16), no_autocast(torch.device("cpu")):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    return torch.autocast(device.type, enabled=False)


def require_memory(need, device, n_items, what, advice):
    """Refuse, naming ``X``, a fit whose ``n_items x n_items`` matrices need more than ``device`` has free.

    ``what`` completes "the items whose n x n ..." (e.g. ``"solve fits on"``), ``advice`` says
    what to use instead. Nothing is checked when the free memory cannot be read.

    Examples
    --------
    >>> require_memory(0, torch.device("cpu"), 10, "solve fits on", "use fewer items")
    """
    free = free_memory(device)
    if free is not None and need > free:
        raise_invalid("X", f"at most the items whose {n_items}x{n_items} {what} {device} (about "
                           f"{need / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB free); {advice}",
                      f"<{n_items} items>")


def free_memory(device):
    """Free memory on ``device`` in bytes, ``None`` when it cannot be read.

    CUDA: ``torch.cuda.mem_get_info`` plus the blocks PyTorch's caching allocator holds but
    does not use (it hands them out again before asking the driver); the CPU: ``MemAvailable``
    of ``/proc/meminfo``.

    Examples
    --------
    >>> free = free_memory(torch.device("cpu"))
    >>> free is None or free > 0
    True
    """
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(torch.cuda.mem_get_info(device)[0]) + int(cached)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def make_generator(seed, device):
    """A :class:`torch.Generator` on ``device`` seeded with ``seed``.

    Parameters
    ----------
    seed : int
        From :func:`skrec.utils.validation.check_random_seed`.
    device : torch.device

    Returns
    -------
    torch.Generator

    Examples
    --------
    >>> g = make_generator(0, torch.device("cpu"))
    >>> torch.randint(10, (3,), generator=g).tolist() == torch.randint(
    ...     10, (3,), generator=make_generator(0, torch.device("cpu"))).tolist()
    True
    """
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) % (2**63))
    return gen


@dataclass
class DeviceCSR:
    """A CSR matrix whose arrays live on a torch device.

    The row pointer is also kept on the host, so that slicing contiguous rows needs no
    device synchronisation.

    Attributes
    ----------
    indptr : torch.Tensor of int64, shape (n_rows + 1,)
    indices : torch.Tensor of int64, shape (nnz,)
    values : torch.Tensor of float32, shape (nnz,)
    shape : tuple of int
    indptr_host : numpy.ndarray of int64

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0]]))
    >>> D = DeviceCSR.from_scipy(X, torch.device("cpu"))
    >>> D.to_dense().tolist()
    [[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]
    >>> D.row_ids().tolist()
    [0, 1, 1]
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    shape: tuple
    indptr_host: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def cached(self, key, build):
        """``build()`` once per matrix and ``key`` (e.g. sorted keys reused by every batch).

        The arrays of a :class:`DeviceCSR` are never modified in place, so a derived tensor
        stays valid for the matrix's lifetime.
        """
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @classmethod
    def one_per_row(cls, columns, n_columns):
        """Row ``r`` holds the single entry ``columns[r]`` (e.g. to exclude each query item itself).

        Examples
        --------
        >>> DeviceCSR.one_per_row(torch.tensor([2, 0]), 3).to_dense().tolist()
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        """
        n, device = columns.numel(), columns.device
        return cls(indptr=torch.arange(n + 1, device=device), indices=columns, values=torch.ones(n, device=device),
                   shape=(n, n_columns), indptr_host=np.arange(n + 1))

    @classmethod
    def from_scipy(cls, X, device, dtype=torch.float32):
        """Copy a canonical scipy CSR matrix to ``device`` (one transfer per array)."""
        indptr = np.asarray(X.indptr, dtype=np.int64)
        return cls(
            indptr=torch.as_tensor(indptr, device=device),
            indices=torch.as_tensor(np.asarray(X.indices, dtype=np.int64), device=device),
            values=torch.as_tensor(np.asarray(X.data), dtype=dtype, device=device),
            shape=tuple(X.shape),
            indptr_host=indptr,
        )

    @property
    def n_rows(self):
        """Number of rows."""
        return self.shape[0]

    @property
    def nnz(self):
        """Number of stored entries."""
        return int(self.indptr_host[-1] - self.indptr_host[0])

    def slice_rows(self, start, stop):
        """Rows ``start:stop`` as a new :class:`DeviceCSR` (views, no copy, no sync)."""
        lo, hi = int(self.indptr_host[start]), int(self.indptr_host[stop])
        host = self.indptr_host[start:stop + 1] - lo
        return DeviceCSR(
            indptr=self.indptr[start:stop + 1] - lo,
            indices=self.indices[lo:hi],
            values=self.values[lo:hi],
            shape=(stop - start, self.shape[1]),
            indptr_host=host,
        )

    def row_counts(self):
        """Stored entries per row, ``[n_rows]`` int64 on the device."""
        return self.indptr[1:] - self.indptr[:-1]

    def row_ids(self):
        """Row index of every stored entry, ``[nnz]`` int64 on the device."""
        return torch.repeat_interleave(
            torch.arange(self.n_rows, device=self.indptr.device), self.row_counts(), output_size=self.nnz
        )

    def coo(self):
        """``(rows, columns, values)`` of the stored entries on the device (row-major order)."""
        return self.row_ids(), self.indices, self.values

    def to_dense(self):
        """Dense ``[n_rows, n_items]`` float tensor on the device."""
        out = torch.zeros(self.shape, dtype=self.values.dtype, device=self.values.device)
        out[self.row_ids(), self.indices] = self.values
        return out

    def _sparse(self, values=None):
        """This pattern as a torch sparse CSR tensor, with ``values`` (``[nnz]``) when given."""
        values = self.values if values is None else values
        with warnings.catch_warnings():  # torch flags its sparse CSR layout as beta
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.indptr, self.indices, values, size=self.shape)

    def matmul(self, dense, values=None):
        """``X @ dense`` (``[n_rows, k]``) by a sparse-dense product; ``values`` replace the stored
        values (same pattern) when given.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> D = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0]])), torch.device("cpu"))
        >>> D.matmul(torch.ones(3, 1)).ravel().tolist(), D.matmul(torch.ones(3, 1), torch.ones(3)).ravel().tolist()
        ([2.0, 4.0], [1.0, 2.0])
        """
        values = self.values if values is None else values
        if dense.device.type == "cpu" and dense.dim() == 2 and values.dtype == dense.dtype and self.n_rows:
            # Each row a weighted bag of rows of ``dense``: the CPU's embedding-bag kernel ran
            # 2.3x faster than the sparse CSR product (1 M entries, 64 columns, one thread).
            return F.embedding_bag(self.indices, dense, self.indptr, mode="sum", per_sample_weights=values,
                                   include_last_offset=True)
        return self._sparse(values) @ dense

    def sampled_dots(self, left, right_t):
        """``left[r] · right_t[:, c]`` for every stored entry ``(r, c)``, ``[nnz]`` in storage order.

        The scores of the stored entries only (a sampled dense-dense product), without forming
        ``left @ right_t`` or gathering ``[nnz, k]`` rows. ``left`` is ``[n_rows, k]``,
        ``right_t`` is ``[k, n_columns]``.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> D = DeviceCSR.from_scipy(sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0]])), torch.device("cpu"))
        >>> L, R = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        >>> D.sampled_dots(L, R).tolist()  # (0, 1) -> 2; (1, 0) -> 4; (1, 2) -> 6
        [2.0, 4.0, 6.0]
        """
        if self.nnz == 0:
            return left.new_zeros(0)
        pattern = self._sparse(torch.zeros(self.nnz, dtype=left.dtype, device=left.device))
        return torch.sparse.sampled_addmm(pattern, left, right_t, beta=0.0).values()

    def row_sum(self, per_entry):
        """Sum ``per_entry`` (``[nnz]``) within each row, ``[n_rows]``."""
        out = torch.zeros(self.n_rows, dtype=per_entry.dtype, device=per_entry.device)
        return out.index_add_(0, self.row_ids(), per_entry)
