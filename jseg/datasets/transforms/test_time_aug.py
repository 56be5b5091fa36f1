"""MultiScaleFlipAug: run the test transforms once per (scale, flip) view."""
from .compose import TRANSFORMS, Compose

AUG_RATIOS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # the official tools/test.py --aug-test scales


def enable_aug_test(pipeline):
    """Switch the MultiScaleFlipAug steps of a test pipeline config to multi-scale (AUG_RATIOS) + flip."""
    for step in pipeline:
        if step["type"] == "MultiScaleFlipAug":
            step.update(img_ratios=AUG_RATIOS, flip=True)
    return pipeline


@TRANSFORMS.register()
class MultiScaleFlipAug:
    """Views for test-time augmentation.

    ``img_scale`` (w, h) tuples, or one tuple and ``img_ratios`` (scales ``int(w*r), int(h*r)``; with
    ``img_scale=None`` the ratios apply to the image's own size).  Each scale is run unflipped and, if
    ``flip``, flipped.  Returns a dict of lists (one entry per view), as mmseg does.
    """

    def __init__(self, transforms, img_scale=None, img_ratios=None, flip=False, flip_direction="horizontal"):
        self.transforms = Compose(transforms)
        if img_ratios is not None:
            img_ratios = img_ratios if isinstance(img_ratios, (list, tuple)) else [img_ratios]
        if img_scale is None and img_ratios is None:
            raise ValueError("MultiScaleFlipAug: give img_scale and/or img_ratios")
        if img_scale is not None and img_ratios is not None:
            base = img_scale if isinstance(img_scale, tuple) else tuple(img_scale)
            self.img_scale = [(int(base[0] * r), int(base[1] * r)) for r in img_ratios]
        elif img_scale is not None:
            self.img_scale = [tuple(s) for s in img_scale] if isinstance(img_scale, list) else [tuple(img_scale)]
        else:
            self.img_scale = None
        self.img_ratios = img_ratios
        self.flip = flip
        self.flip_directions = flip_direction if isinstance(flip_direction, list) else [flip_direction]

    def __call__(self, results):
        if self.img_scale is None:
            h, w = results["img"].shape[:2]
            scales = [(int(w * r), int(h * r)) for r in self.img_ratios]
        else:
            scales = self.img_scale
        flips = [False, True] if self.flip else [False]
        views = []
        for scale in scales:
            for flip in flips:
                for direction in (self.flip_directions if flip else self.flip_directions[:1]):
                    view = {k: v for k, v in results.items()}
                    view.update(scale=scale, flip=flip, flip_direction=direction)
                    views.append(self.transforms(view))
        return {k: [v[k] for v in views] for k in views[0]}
