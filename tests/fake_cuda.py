"""A pretend CUDA device for CPU-only test machines, to catch device bugs by running the code.

Inside `fake_cuda()` torch reports a GPU (`torch.cuda.is_available()` is True), so
``resolve_device("auto")`` gives ``"cuda"``. A tensor "on the GPU" is a CPU tensor of the
subclass `FakeCudaTensor`: it reports ``device`` ``cuda:0``, and every torch call is checked
as CUDA would check it:

- an op mixing GPU tensors with CPU tensors of one or more dimensions raises torch's
  "Expected all tensors to be on the same device" (0-dim CPU tensors are allowed, as CUDA
  takes them as scalars; CPU indices into a GPU tensor too);
- ``.numpy()`` / ``np.asarray`` of a GPU tensor raises torch's TypeError (it needs ``.cpu()``);
- a CPU `torch.Generator` drawing GPU noise (``torch.randn(..., generator=g, device="cuda")``)
  raises torch's RuntimeError;
- ``.to("cuda")``, ``.cuda()``, factories with ``device="cuda"`` (or a GPU tensor's
  ``.device``) make GPU tensors; ``.to("cpu")`` / ``.cpu()`` copy back to plain tensors.

Modules moved with ``.to("cuda")`` get new parameter objects (torch's
``overwrite_module_params_on_conversion``), so an optimizer must be made after the move, as on
a real GPU. Values are computed on the CPU, so results equal a CPU run's.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch.overrides import TorchFunctionMode

CUDA = torch.device("cuda", 0)


class FakeCudaTensor(torch.Tensor):
    """A CPU tensor that stands for one on ``cuda:0`` (see the module doc)."""

    def __deepcopy__(self, memo):  # torch's needs new_empty of the subclass; a copy on the same device
        if id(self) not in memo:
            out = self.as_subclass(torch.Tensor).detach().clone().as_subclass(FakeCudaTensor)
            out.requires_grad_(self.requires_grad)
            out.__dict__ = copy.deepcopy(self.__dict__, memo)  # a parameter's flag
            memo[id(self)] = out
        return memo[id(self)]


def _is_gpu(x) -> bool:
    return isinstance(x, FakeCudaTensor)


def _plain(x):
    return x.as_subclass(torch.Tensor) if _is_gpu(x) else x


def _gpu(x):
    if isinstance(x, torch.Tensor) and not _is_gpu(x):
        return x.as_subclass(FakeCudaTensor)
    if isinstance(x, (list, tuple)):
        return type(x)(_gpu(v) for v in x)
    return x


def _device_type(value) -> str | None:
    if isinstance(value, (str, torch.device)):
        return torch.device(value).type
    if isinstance(value, int) and not isinstance(value, bool):
        return "cuda"  # .to(0): a CUDA index
    return None


def _leaves(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)


def _check_same_device(func, tensors: list[torch.Tensor]) -> None:
    gpu = any(_is_gpu(t) for t in tensors)
    cpu = any(not _is_gpu(t) and t.ndim > 0 for t in tensors)
    if gpu and cpu:
        raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                           f"cuda:0 and cpu! (fake CUDA, in {getattr(func, '__name__', func)})")


_TO = {torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu}
_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}
_COPIES = {torch.Tensor.copy_}  # cross-device copies are what moves data
# property getters come as a fresh method-wrapper per access: compared with ==, not `is`
_DEVICE, _IS_CUDA, _GRAD = torch.Tensor.device.__get__, torch.Tensor.is_cuda.__get__, torch.Tensor.grad.__get__
_UNCHECKED = {torch._has_compatible_shallow_copy_type}  # compares types, computes nothing


class FakeCudaMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func == _DEVICE:
            return CUDA if _is_gpu(args[0]) else func(*args)
        if func == _IS_CUDA:
            return _is_gpu(args[0])
        if func in _UNCHECKED:
            return func(*args, **kwargs)
        if func == _GRAD:  # autograd's gradients come back plain: same device as the tensor
            out = func(*args)
            return _gpu(out) if _is_gpu(args[0]) and out is not None else out
        if func in _NUMPY and _is_gpu(args[0]):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                            "to host memory first. (fake CUDA)")
        if func in _TO:
            return self._to(func, args, kwargs)
        if func in _COPIES:
            return func(*args, **kwargs)
        if func is torch.Tensor.__getitem__ or func is torch.Tensor.__setitem__:
            self_, index = args[0], args[1]
            if not _is_gpu(self_) and any(_is_gpu(t) and t.ndim > 0 for t in _leaves(index)):
                raise RuntimeError("indices should be either on cpu or on the same device as the indexed tensor "
                                   "(cuda:0) (fake CUDA)")
            if func is torch.Tensor.__setitem__:
                _check_same_device(func, [self_, *_leaves(args[2:])])
                return func(*args, **kwargs)
            if not _is_gpu(self_):  # a CPU tensor indexed by a GPU scalar: a CPU result
                return func(self_, _plain(index) if isinstance(index, torch.Tensor) else index)
            return func(*args, **kwargs)
        device = kwargs.get("device")
        if _device_type(device) == "cuda":  # a factory (or *_like) asked for the GPU
            gen = kwargs.get("generator")
            if isinstance(gen, torch.Generator) and gen.device.type != "cuda":
                raise RuntimeError(f"Expected a 'cuda' device type for generator but found '{gen.device.type}' "
                                   "(fake CUDA)")
            kwargs["device"] = "cpu"
            tensors = list(_leaves(args)) + list(_leaves(kwargs))
            _check_same_device(func, tensors)
            return _gpu(func(*[_plain(a) for a in args], **kwargs))
        _check_same_device(func, list(_leaves(args)) + list(_leaves(kwargs)))
        return func(*args, **kwargs)

    @staticmethod
    def _to(func, args, kwargs):
        self_ = args[0]
        if func is torch.Tensor.cuda:
            target = "cuda"
            rest, kw = (), {k: v for k, v in kwargs.items() if k in ("non_blocking", "memory_format")}
        elif func is torch.Tensor.cpu:
            target, rest, kw = "cpu", (), kwargs
        else:
            target, rest, kw = None, [], {}
            for a in args[1:]:
                t = _device_type(a)
                if t is not None:
                    target = t
                    a = "cpu"
                elif isinstance(a, torch.Tensor):  # .to(other): other's device and dtype
                    target = "cuda" if _is_gpu(a) else "cpu"
                    a = a.dtype
                rest.append(a)
            for k, v in kwargs.items():
                if k == "device":
                    target = _device_type(v) or target
                    v = "cpu"
                kw[k] = v
        plain = _plain(self_)
        if func is torch.Tensor.cuda or func is torch.Tensor.cpu:
            out = plain.cpu(**({} if func is torch.Tensor.cuda else kw))
            if func is torch.Tensor.cuda and "memory_format" in kw:
                out = out.contiguous(memory_format=kw["memory_format"])
        else:
            out = plain.to(*rest, **kw)
        if target is None:  # a dtype / memory format change: stays where it is
            return _gpu(out) if _is_gpu(self_) else out
        moved = (target == "cuda") != _is_gpu(self_)
        if moved and out is plain:  # a copy to the other device, as on a real one
            out = plain.clone()
        return _gpu(out) if target == "cuda" else out


@contextlib.contextmanager
def fake_cuda(monkeypatch) -> Iterator[None]:
    """Run the block as if a CUDA GPU were present (see the module doc)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    states: dict = {}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": states.get("rng", torch.zeros(16, dtype=torch.uint8)))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": states.__setitem__("rng", state.clone()))
    overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        with FakeCudaMode():
            yield
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(overwrite)
