# CGRSeg-T: EfficientFormerV2-S1 + CGRSeg head (channels 128, bands 11, 5 pyramid RCMs).
_base_ = './cgrseg.py'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='pretrained/eformer_s1_450.pth')))
