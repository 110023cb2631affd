"""Forms for the keys, members and settings sections.

`ConsoleForm` renders fields with `components/field.html`, which reads `errors` and `help_text`
from its context; Django 5.2 gives a field template only `field`, so errors and help never
showed. Until the frame's template is fixed, these forms use a copy that reads `field.errors`
and `field.help_text` (components/field_group.html), and drop the label colon.
"""

from frontend.console import ConsoleForm, ConsoleFormRenderer


class SectionFormRenderer(ConsoleFormRenderer):
    field_template_name = "frontend/components/field_group.html"


class SectionForm(ConsoleForm):
    default_renderer = SectionFormRenderer

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
