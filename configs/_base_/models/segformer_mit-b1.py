# SegFormer-B1: MiT-B1 (NVlabs mix_transformer.py class mit_b1) + all-MLP decoder, E=256.
_base_ = './segformer_mit.py'
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[2, 2, 2, 2],
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mit_b1.pth')),
    decode_head=dict(
        in_channels=[64, 128, 320, 512],
        decoder_params=dict(embed_dim=256)))
