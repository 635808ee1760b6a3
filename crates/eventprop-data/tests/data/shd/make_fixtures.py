"""Writes the small SHD/SSC-layout HDF5 files that tests/shd.rs reads.

Run from this folder with h5py installed (`python make_fixtures.py`); the files are
committed so that the Rust tests need no Python. Every value is written out here, and the
tests compare against the same literals.
"""
import h5py
import numpy as np

TIMES = [[0.5, 0.25, 0.75], [], [0.125, 1.0]]
UNITS = [[3, 0, 699], [], [7, 7]]
LABELS = [0, 19, 5]


def write(name, times_dtype="<f4", units_dtype="<u2", labels_dtype="u1", times=TIMES,
          units=UNITS, labels=LABELS, compress=False, skip=(), plain_times=False):
    with h5py.File(name, "w") as f:
        kw = dict(compression="gzip", chunks=True) if compress else {}
        g = f.create_group("spikes")
        if "times" not in skip:
            if plain_times:
                g.create_dataset("times", data=np.array([0.1, 0.2, 0.3], dtype=times_dtype))
            else:
                t = g.create_dataset("times", (len(times),),
                                     dtype=h5py.vlen_dtype(np.dtype(times_dtype)), **kw)
                for i, x in enumerate(times):
                    t[i] = np.array(x, dtype=times_dtype)
        if "units" not in skip:
            u = g.create_dataset("units", (len(units),),
                                 dtype=h5py.vlen_dtype(np.dtype(units_dtype)), **kw)
            for i, x in enumerate(units):
                u[i] = np.array(x, dtype=units_dtype)
        if "labels" not in skip:
            f.create_dataset("labels", data=np.array(labels, dtype=labels_dtype))
        e = f.create_group("extra")
        e.create_dataset("speaker", data=np.arange(len(labels)))
        e.create_dataset("keys", data=np.array([b"zero", b"one"]))


write("f32_u16.h5")
write("f64be_u32.h5", times_dtype=">f8", units_dtype="<u4", labels_dtype="<i8")
write("gzip_f64_u8.h5", times_dtype="<f8", units_dtype="u1", compress=True,
      units=[[3, 0, 255], [], [7, 7]])
write("missing_labels.h5", skip=("labels",))
write("missing_units.h5", skip=("units",))
write("sample_count_mismatch.h5", units=UNITS[:2])
write("event_count_mismatch.h5", units=[[3, 0], [], [7, 7]])
write("nan_time.h5", times_dtype="<f8", times=[[0.5, float("nan"), 0.75], [], [0.125, 1.0]])
write("negative_time.h5", times=[[0.5, -0.25, 0.75], [], [0.125, 1.0]])
write("label_out_of_range.h5", labels=[0, 20, 5])
write("unit_out_of_range.h5", units=[[3, 0, 700], [], [7, 7]])
write("signed_negative_unit.h5", units_dtype="<i2", units=[[3, -1, 5], [], [7, 7]])
write("times_not_ragged.h5", plain_times=True)
write("float_units.h5", units_dtype="<f4")
with open("not_hdf5.h5", "wb") as f:
    f.write(b"this is not an HDF5 file\n")
