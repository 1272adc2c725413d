"""Video: clips stylised frame for frame by the feed-forward methods (``pip install -e ".[video]"``).

* :mod:`.io`: reading and writing clips with PyAV (validation, frames as tensors, timestamps,
  audio copied, atomic writes);
* :mod:`.temporal`: ``--temporal``, less flicker (running statistics inside the stylizers' norms,
  a motion-compensated blend, scene cuts);
* :mod:`.clip`: one clip through one stylizer (:class:`VideoConfig`, :class:`ClipStylizer`);
* :mod:`.flicker`: the flicker measure on a pan of known motion;
* :mod:`.flow`: dense optical flow (OpenCV's DIS), backward warping, Ruder et al.'s occlusion
  mask, Lai et al.'s warping error and scene cuts (a library: ``--temporal`` does not use it yet).

Nothing here imports PyAV until a clip is read or written, nor OpenCV until a flow is computed.
"""

from .clip import ClipStylizer, VideoConfig
from .flicker import pan, pan_flicker
from .flow import WarpingError, clip_motion, clip_warping_error, optical_flow, same_surface, warp
from .io import VIDEO_EXTENSIONS, ClipInfo, VideoError, is_clip, probe, read_frames, transcode, write_clip
from .temporal import RunningMoments, TemporalFilter, estimate_shift, shifted, smoothing

__all__ = ["VIDEO_EXTENSIONS", "ClipInfo", "ClipStylizer", "RunningMoments", "TemporalFilter", "VideoConfig",
           "VideoError", "WarpingError", "clip_motion", "clip_warping_error", "estimate_shift", "is_clip",
           "optical_flow", "pan", "pan_flicker", "probe", "read_frames", "same_surface", "shifted", "smoothing",
           "transcode", "warp", "write_clip"]
