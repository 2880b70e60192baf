"""timm models behind the zoo contract (``create_model("timm/<name>", ...)``).

Wraps ``timm.create_model(name, pretrained=False, num_classes=..., in_chans=...)`` so that it
exposes the same interface as frugalcv's own backbones (see :mod:`frugalcv.zoo`). Weights are never
downloaded: ``pretrained`` is always False.

``forward_intermediates`` returns the maps timm lists in ``feature_info`` (for timm's CNNs this
*includes* the stem, e.g. ``act1`` of a ResNet; frugalcv's own models exclude it), with the last one
replaced by ``forward_features(x)``. Where timm's ``forward_features`` ends with layers after the
last ``feature_info`` entry (a 1x1 head conv in EfficientNet, MobileNetV2, GhostNet), that output
is appended as one more entry. ``stage_channels`` lists the channels of each entry.

Limits: the contract's ``(B, C, h, w)`` features hold for convolutional timm models; transformers
return timm's token layout from ``forward_features``. ``forward_head(f, pre_logits=True)`` returns
``(B, head_hidden_size)``, which differs from ``num_features`` for models with a conv head after
the pool (MobileNetV3: 1024).
"""

from __future__ import annotations

import difflib

from torch import Tensor, nn

__all__ = ["TimmModel"]


class TimmModel(nn.Module):
    """A timm classifier with ``forward_features / forward_head / forward_intermediates``.

    Args:
        name: a timm model name without the ``timm/`` prefix, e.g. ``"resnet18"``.
        num_classes: classifier outputs (0: no classifier, timm's convention).
        in_chans: input channels.

    Attributes:
        model: the timm module.
        num_features, head_hidden_size, num_classes, stage_channels: see the module docstring.
    """

    def __init__(self, *, name: str, num_classes: int, in_chans: int = 3) -> None:
        super().__init__()
        import timm  # imported here: timm takes about a second to import

        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=3)
            hint = f" Closest: {', '.join(close)}." if close else ""
            raise ValueError(
                f"Unknown timm model {name!r}.{hint} See timm.list_models() for all names."
            )
        self.name = name
        self.model = timm.create_model(
            name, pretrained=False, num_classes=num_classes, in_chans=in_chans
        )
        self.num_classes = num_classes
        self.num_features = int(self.model.num_features)
        self.head_hidden_size = int(getattr(self.model, "head_hidden_size", self.num_features))
        feature_info = getattr(self.model, "feature_info", None)
        if not feature_info:
            raise ValueError(
                f"timm model {name!r} has no feature_info, so its stage outputs are unknown; "
                "pick a convolutional timm model (resnet*, mobilenetv3_*, convnext_*, ...)."
            )
        self._feature_modules = [str(fi["module"]) for fi in feature_info]
        channels = [int(fi["num_chs"]) for fi in feature_info]
        # Equal channels: the last feature_info entry is forward_features' output (checked for
        # resnet, mobilenetv3, convnext, regnet); otherwise forward_features adds a head conv.
        self._append_final = channels[-1] != self.num_features
        self.stage_channels = channels + [self.num_features] if self._append_final else channels
        self._use_timm_intermediates = hasattr(self.model, "forward_intermediates")

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, h, w)`` (timm's ``forward_features``)."""
        return self.model.forward_features(x)

    def forward_head(self, f: Tensor, *, pre_logits: bool = False) -> Tensor:
        """``(B, C, h, w) -> (B, num_classes)``; with ``pre_logits`` ``(B, head_hidden_size)``."""
        return self.model.forward_head(f, pre_logits=pre_logits)

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """Maps at each ``feature_info`` entry (stem included); the last is ``forward_features``.

        Uses timm's ``forward_intermediates`` where the model has it, forward hooks on the
        ``feature_info`` modules otherwise.
        """
        if self._use_timm_intermediates:
            final, inters = self.model.forward_intermediates(x)
        else:
            inters = []
            handles = [
                self.model.get_submodule(name).register_forward_hook(
                    lambda _m, _i, out: inters.append(out)
                )
                for name in self._feature_modules
            ]
            try:
                final = self.model.forward_features(x)
            finally:
                for h in handles:
                    h.remove()
        inters = list(inters)
        return inters + [final] if self._append_final else inters[:-1] + [final]

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
