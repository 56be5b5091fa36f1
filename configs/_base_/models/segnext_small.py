# SegNeXt-S model (official local_configs/segnext/small/*.py; paper Table 2).
_base_ = './segnext_mscan.py'
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[2, 2, 4, 2],
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mscan_s.pth')),
    decode_head=dict(
        in_channels=[128, 320, 512],
        channels=256,
        ham_channels=256,
        ham_kwargs=dict(MD_R=16)))
