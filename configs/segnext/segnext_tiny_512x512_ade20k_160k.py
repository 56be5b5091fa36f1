# SegNeXt-T on ADE20K (150 classes): official local_configs/segnext/tiny/segnext.tiny.512x512.ade.160k.py
# Model settings only; data and schedule settings arrive with the data and training configs.
_base_ = ['../_base_/models/segnext_tiny.py']
model = dict(decode_head=dict(num_classes=150), test_cfg=dict(mode='whole'))
