"""LeRobot's ACT and VQ-BeT at test size (narrow one-layer heads on an untrained backbone: nothing
downloads), shared by the tests that build or train one."""

SMALL_ACT = dict(
    chunk_size=16,
    n_action_steps=8,
    dim_model=32,
    n_heads=2,
    dim_feedforward=64,
    n_encoder_layers=1,
    n_vae_encoder_layers=1,
    latent_dim=4,
    pretrained_backbone_weights=None,  # offline
)
SMALL_VQBET = dict(
    n_obs_steps=2,
    action_chunk_size=8,
    crop_shape=None,
    pretrained_backbone_weights=None,
    use_group_norm=True,
    spatial_softmax_num_keypoints=8,
    vqvae_embedding_dim=32,
    vqvae_enc_hidden_dim=32,
    gpt_n_layer=1,
    gpt_n_head=2,
    gpt_hidden_dim=32,
    gpt_input_dim=32,
    gpt_output_dim=32,
)
