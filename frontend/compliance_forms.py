"""Forms of the consent, audit and trace pages.

The frame's field template (`components/field.html`) reads `errors` and `help_text`, which
Django's BoundField context (`{"field": ...}`) does not provide, so its errors and help never
showed. Until the frame passes them, these forms render each field through a wrapper that
does, and keep the frame's markup."""

from frontend.console import ConsoleForm, ConsoleFormRenderer


class FieldGroupRenderer(ConsoleFormRenderer):
    field_template_name = "frontend/components/field_group.html"


class ComplianceForm(ConsoleForm):
    default_renderer = FieldGroupRenderer
