from django.apps import AppConfig


class RatingsConfig(AppConfig):
    name = "ratings"
    verbose_name = "Ratings"

    def ready(self) -> None:
        # The battle domain reads the newest standings through its own
        # interface (sampling weights, the admin's rating column), never by
        # importing ratings: the readers are installed here.
        from arena import standings

        from . import selectors

        standings.register(
            sampling=selectors.sampling_standings,
            overall=selectors.overall_standings,
            reset=selectors.reset_sampling_cache,
        )
