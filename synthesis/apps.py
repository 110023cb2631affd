from django.apps import AppConfig


class SynthesisConfig(AppConfig):
    name = "synthesis"

    def ready(self):
        from rollout.signals import version_retired
        from synthesis.services import prompt_cache

        version_retired.connect(
            lambda sender, version, **kwargs: prompt_cache.forget_version(version.id),
            dispatch_uid="synthesis.prompt_cache.forget_version",
            weak=False,
        )
