from django.urls import re_path

from synthesis.api import openai

urlpatterns = [
    re_path(r"^audio/speech/?$", openai.SpeechView.as_view(), name="openai-speech"),
    re_path(r"^audio/voices/?$", openai.OpenAIVoicesView.as_view(), name="openai-voices"),
    re_path(r"^models/?$", openai.ModelsView.as_view(), name="openai-models"),
]
