# SegNeXt-L on Cityscapes (19 classes): official local_configs/segnext/large/segnext.large.1024x1024.city.160k.py
# Model settings only; data and schedule settings arrive with the data and training configs.
_base_ = ['../_base_/models/segnext_large.py']
model = dict(
    decode_head=dict(num_classes=19),
    test_cfg=dict(mode='slide', crop_size=(1024, 1024), stride=(768, 768)))
