SCREEN_STATISTIC = "val_loss_wr"
