# CGRSeg-L: EfficientFormerV2-L + CGRSeg head (channels 256, bands 9, 5 pyramid RCMs).
_base_ = './cgrseg.py'
model = dict(
    backbone=dict(layers=[5, 5, 15, 10], embed_dims=[40, 80, 192, 384], e_ratios='L', vit_num=6,
                  drop_path_rate=0.1, init_cfg=dict(type='Pretrained', checkpoint='pretrained/eformer_l_450.pth')),
    decode_head=dict(in_channels=[80, 192, 384], channels=256, dw_size=9, neck_size=9, next_repeat=5))
