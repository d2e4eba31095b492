"""Reading .npy / .npz / pickle files from strangers as data only: pickles never run code.

Plain numeric and string arrays are read by NumPy with ``allow_pickle=False``. NumPy stores an
*object* array (SmoothNet's npz files hold one entry per sequence that way) as a pickle; such a
member is read by :class:`RestrictedUnpickler`, which can build NumPy arrays, dtypes and scalars
and Python's plain containers, and refuses every other global (``os.system``, ``builtins.eval``,
``open``, any class) with :class:`lib.errors.UnsafeFileError` before anything is called.

    >>> arrays = load_npz("data/poses/sample_sim_3D/detected/sample_sim_3D_test.npz")
"""

from __future__ import annotations

import codecs
import pickle
import zipfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from lib.errors import InputFileError, UnsafeFileError

try:  # NumPy 2 moved the pickling helpers to numpy._core; files name either module
    from numpy._core import multiarray as _multiarray
except ImportError:  # NumPy 1.x
    from numpy.core import multiarray as _multiarray

# Pickle encoding for Python 2 byte strings (NumPy's own recommendation for old array pickles).
_ENCODING = "latin1"
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


def _latin1_encode(text: str, encoding: str = _ENCODING) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes; only the latin-1 codec."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r}")
    return text.encode(_ENCODING)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for what NumPy pickles of arrays, dtypes and scalars name."""
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                           ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for module in _NUMPY_MODULES:
        allowed[(module, "_reconstruct")] = _multiarray._reconstruct
        allowed[(module, "scalar")] = _multiarray.scalar
    return allowed


# The whole allow-list of array pickles; nothing else is ever imported or called.
ARRAY_GLOBALS = _numpy_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``allowed`` (default :data:`ARRAY_GLOBALS`).

    Args:
        handle: binary stream positioned at the pickle.
        allowed: (module, name) -> the object to use; any other global raises
            :class:`ForbiddenGlobal` before it is imported.
    """

    def __init__(self, handle: IO[bytes],
                 allowed: dict[tuple[str, str], Any] | None = None) -> None:
        super().__init__(handle, encoding=_ENCODING)
        self._allowed = ARRAY_GLOBALS if allowed is None else allowed

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object for ``module.name``; anything else is refused, never imported."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids reference objects outside the pickle: never resolved."""
        raise ForbiddenGlobal(f"persistent id {pid!r}")


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list (message: ``module.name``)."""


def restricted_unpickle(handle: IO[bytes], where: str,
                        allowed: dict[tuple[str, str], Any] | None = None) -> Any:
    """Unpickle plain data from ``handle``; ``where`` (file, key) goes into every error.

    Raises:
        UnsafeFileError: the pickle names a global outside the allow-list (nothing was called).
        InputFileError: the stream is not a valid pickle of the allowed objects.
    """
    try:
        return RestrictedUnpickler(handle, allowed).load()
    except ForbiddenGlobal as err:
        raise UnsafeFileError(f"{where}: refused to read it: its pickle calls {err}, which could "
                              "run code; only NumPy arrays, numbers and strings are accepted. "
                              "Re-save the data as plain arrays (np.savez) from a trusted "
                              "source") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError) as err:
        raise InputFileError(f"{where}: malformed pickled data ({type(err).__name__}: {err}); "
                             "re-download or rebuild the file") from None


def _read_header(handle: IO[bytes]) -> tuple[tuple[int, int], np.dtype | None]:
    """The .npy format version and dtype (None for a version whose header NumPy parses)."""
    version = np.lib.format.read_magic(handle)
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        return version, None
    _shape, _fortran, dtype = readers[version](handle)
    return version, dtype


def read_npy_stream(opener: Callable[[], IO[bytes]], where: str) -> np.ndarray:
    """One array from a .npy stream; an object array through the restricted unpickler.

    Args:
        opener: returns a fresh binary stream at the start of the .npy data (called at most
            twice: once for the header, once for NumPy's own reader of a plain array).
        where: the file (and member) named in errors.
    """
    with opener() as handle:
        _version, dtype = _read_header(handle)
        if dtype is not None and dtype.hasobject:
            array = restricted_unpickle(handle, where)
            if not isinstance(array, np.ndarray):
                raise InputFileError(f"{where}: the pickled member is a {type(array).__name__}, "
                                     "not an array")
            return array
    with opener() as handle:
        return np.lib.format.read_array(handle, allow_pickle=False)


def _wrap_errors(path: str, error_type: type[InputFileError], hint: str,
                 read: Callable[[], Any]) -> Any:
    """Run ``read``; OS / format errors become one ``error_type`` naming ``path``."""
    try:
        return read()
    except InputFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise error_type(f"{path} is not a readable {hint} ({type(err).__name__}: {err}); "
                         "re-download or rebuild it") from None


def load_npy(path: str, error_type: type[InputFileError] = InputFileError) -> np.ndarray:
    """The array of a .npy file, read without running code.

    Raises:
        UnsafeFileError: an object array whose pickle names anything but NumPy data.
        error_type: a file that is not a valid .npy.
    """
    return _wrap_errors(path, error_type, "npy file",
                        lambda: read_npy_stream(lambda: open(path, "rb"), path))


def _read_members(path: str) -> dict[str, np.ndarray]:
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".npy"):
                raise InputFileError(f"{path}: member {name!r} is not an .npy array; an .npz "
                                     "written by np.savez holds only arrays")
            key = name[:-len(".npy")]
            arrays[key] = read_npy_stream(lambda name=name: archive.open(name),
                                          f"{path}, key {key!r}")
    return arrays


def load_npz(path: str, error_type: type[InputFileError] = InputFileError) -> dict[str, np.ndarray]:
    """Every array of an .npz file (``{key: array}``, in file order), read without running code.

    Gives what an unrestricted ``np.load`` gives for files of arrays, numbers and strings
    (object arrays included), and refuses the rest.

    Raises:
        UnsafeFileError: an object array whose pickle names anything but NumPy data.
        error_type: a file that is not a valid .npz (``InputFileError`` or a subclass).
    """
    return _wrap_errors(path, error_type, "npz file", lambda: _read_members(path))


def load_pickle(path: str, allowed: dict[tuple[str, str], Any] | None = None) -> Any:
    """A whole pickle file of plain data (NumPy arrays, numbers, strings, containers).

    Args:
        allowed: extra (module, name) -> object entries on top of :data:`ARRAY_GLOBALS`
            (callers add safe stand-ins, never the real classes of a third-party package).
    """
    table = {**ARRAY_GLOBALS, **(allowed or {})}

    def read() -> Any:
        with open(path, "rb") as handle:
            return restricted_unpickle(handle, path, table)
    return _wrap_errors(path, InputFileError, "pickle file", read)
