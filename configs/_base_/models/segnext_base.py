# SegNeXt-B model (official local_configs/segnext/base/*.py; paper Table 2).
_base_ = './segnext_mscan.py'
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[3, 3, 12, 3],
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mscan_b.pth')),
    decode_head=dict(
        in_channels=[128, 320, 512],
        channels=512,
        ham_channels=512,
        ham_kwargs=dict(MD_R=64)))
