"""Writers of clips: animated GIFs, contact sheets and strips of the diffusion process."""
