"""Video: clips stylised frame for frame by the feed-forward methods (``pip install -e ".[video]"``).

* :mod:`.io`: reading and writing clips with PyAV (validation, frames as tensors, timestamps,
  audio copied, atomic writes);
* :mod:`.temporal`: ``--temporal``, less flicker (running statistics inside the stylizers' norms,
  a blend of the previous output warped by the optical flow, scene cuts);
* :mod:`.clip`: one clip through one stylizer (:class:`VideoConfig`, :class:`ClipStylizer`);
* :mod:`.flicker`: the flicker measure on a pan of known motion;
* :mod:`.flow`: dense optical flow (OpenCV's DIS), backward warping, Ruder et al.'s occlusion
  mask, Lai et al.'s warping error and scene cuts;
* :mod:`.known_motion`: clips built from the sample pictures whose true flow is known.

Nothing here imports PyAV until a clip is read or written, nor OpenCV until a flow is computed.
"""

from .clip import ClipStylizer, VideoConfig
from .flicker import pan, pan_flicker, shifted
from .flow import Motion, WarpingError, clip_motion, clip_warping_error, optical_flow, pair_motion, same_surface, warp
from .io import VIDEO_EXTENSIONS, ClipInfo, VideoError, is_clip, probe, read_frames, transcode, write_clip
from .temporal import RunningMoments, TemporalFilter, smoothing

__all__ = ["VIDEO_EXTENSIONS", "ClipInfo", "ClipStylizer", "Motion", "RunningMoments", "TemporalFilter",
           "VideoConfig", "VideoError", "WarpingError", "clip_motion", "clip_warping_error", "is_clip", "optical_flow",
           "pair_motion", "pan", "pan_flicker", "probe", "read_frames", "same_surface", "shifted", "smoothing",
           "transcode", "warp", "write_clip"]
