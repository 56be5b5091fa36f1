# CGRSeg-B: EfficientFormerV2-S2 + CGRSeg head (channels 256, bands 11, 6 pyramid RCMs).
_base_ = './cgrseg.py'
model = dict(
    backbone=dict(layers=[4, 4, 12, 8], embed_dims=[32, 64, 144, 288], e_ratios='S2', vit_num=4,
                  drop_path_rate=0.02, init_cfg=dict(type='Pretrained', checkpoint='pretrained/eformer_s2_450.pth')),
    decode_head=dict(in_channels=[64, 144, 288], channels=256, next_repeat=6))
