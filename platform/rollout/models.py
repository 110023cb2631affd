"""The model registry: every model version a voice can be synthesized with."""

from django.db import models


class ModelVersion(models.Model):
    """One immutable model artefact, identified by engine, version and checksum."""

    class Status(models.TextChoices):
        REGISTERED = "registered", "Registered"
        VALIDATED = "validated", "Validated"
        RETIRED = "retired", "Retired"

    # e.g. "piper:en_US-joe-medium@3f2a9c0e1b7d" (engine:version@checksum prefix)
    id = models.CharField(primary_key=True, max_length=200)
    engine = models.CharField(max_length=50)
    version = models.CharField(max_length=100)
    artefact_checksum = models.CharField(max_length=64)
    # Where the artefact lives: a storage key, or empty for artefacts shipped in a package.
    artefact_key = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REGISTERED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["engine", "version", "artefact_checksum"], name="uniq_model_version"
            )
        ]

    def __str__(self) -> str:
        return self.id
