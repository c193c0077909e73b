"""Real PyTorch training and measurement beside the noisy quadratic model.

- `workloads`, `catalog`: offline workloads (data, model, loss, validation metric, target).
- `train_config`, `population`, `plain`: one training configuration; all trials of a batch
  size trained as one vmapped model, and the plain torch.optim loop it is checked against.
- `protocol`, `executor`: the Shallue et al. (2019) steps-to-result sweep per batch size, its
  resumable records, and where the batch sizes run (locally or on a Dask cluster).
- `checkpoints`, `curvature`, `spectral`, `noise`, `measure`: curvature (Hessian or
  Gauss-Newton) and gradient-noise spectra of a network at checkpoints of a reference run.
- `adapter`: the one bridge from a measurement to the NQM's `nqm.spectrum.Spectrum`.
- `versions`: the versions every record carries.
"""
