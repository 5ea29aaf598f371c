"""The worker pipeline: finalized blocks -> store -> scoring -> scores published -> settlement -> payouts."""
