"""The wording of messages in the subscriber's language (ADR 0035).

English phrases are the keys: items carry their headline in English (the digest keeps items
that way too), and rendering looks each phrase up in the subscription's language. A phrase
with a ``{placeholder}`` also matches its rendered English form ("Funding deadline in 5 days").
Languages without a table, and phrases missing from a table, stay English. Titles and
other data are never looked up (a solution may be called "New needs").
"""

from __future__ import annotations

import re
from functools import lru_cache

ENGLISH = "en"

_FRENCH: dict[str, str] = {
    # Headlines of alerts.
    "New solution published": "Nouvelle solution publiée",
    "New knowledge product": "Nouveau produit de connaissance",
    "New funding opportunity": "Nouvelle opportunité de financement",
    "New need posted": "Nouveau besoin publié",
    "Review of your solution: approved": "Examen de votre solution : approuvée",
    "Review of your solution: changes requested": (
        "Examen de votre solution : modifications demandées"
    ),
    "Review of your solution: rejected": "Examen de votre solution : refusée",
    "Review of your solution: recorded": "Examen de votre solution : enregistré",
    "Your solution needs confirming": "Votre solution doit être confirmée",
    "Not confirmed for 24 months: please confirm it is current or update it.": (
        "Non confirmée depuis 24 mois : confirmez qu'elle est à jour ou mettez-la à jour."
    ),
    "Your organization is verified": "Votre organisation est vérifiée",
    "Your organization's registration was rejected": (
        "L'inscription de votre organisation a été refusée"
    ),
    "Your organization's verification was suspended": (
        "La vérification de votre organisation a été suspendue"
    ),
    "Your organization's verification expired: please reconfirm": (
        "La vérification de votre organisation a expiré : veuillez la confirmer à nouveau"
    ),
    "Funding deadline today": "Date limite de financement aujourd'hui",
    "Funding deadline in 1 day": "Date limite de financement dans 1 jour",
    "Funding deadline in {n} days": "Date limite de financement dans {n} jours",
    "A solution is proposed for your need": "Une solution est proposée pour votre besoin",
    "A need your solution could answer": "Un besoin auquel votre solution pourrait répondre",
    "The provider accepted the match": "Le fournisseur a accepté la mise en relation",
    "The seeker accepted the match": "Le demandeur a accepté la mise en relation",
    "The match is accepted by both sides": "La mise en relation est acceptée des deux côtés",
    "The match was declined": "La mise en relation a été déclinée",
    # Labels of details, and the values of the enumerated ones.
    "Deadline": "Date limite",
    "Outcome": "Résultat",
    "Passed": "Validée",
    "Reason": "Motif",
    "Need": "Besoin",
    "Solution": "Solution",
    "Score": "Score",
    "Why": "Pourquoi",
    "approved": "approuvée",
    "changes requested": "modifications demandées",
    "rejected": "refusée",
    "recorded": "enregistré",
    "yes": "oui",
    "no": "non",
    # Digests.
    "New solutions": "Nouvelles solutions",
    "New knowledge products": "Nouveaux produits de connaissance",
    "Funding opportunities": "Opportunités de financement",
    "New needs": "Nouveaux besoins",
    "Your organization": "Votre organisation",
    "Matches for your needs": "Mises en relation pour vos besoins",
    "Needs your solutions could answer": "Besoins auxquels vos solutions pourraient répondre",
    "Daily digest, {date}": "Résumé quotidien, {date}",
    "Weekly digest, week of {date}": "Résumé hebdomadaire, semaine du {date}",
    "1 update": "1 nouveauté",
    "{n} updates": "{n} nouveautés",
    "… and {n} more on the platform.": "… et {n} de plus sur la plateforme.",
    "open": "ouvrir",
    "Unsubscribe": "Se désabonner",
}

_SPANISH: dict[str, str] = {
    "New solution published": "Nueva solución publicada",
    "New knowledge product": "Nuevo producto de conocimiento",
    "New funding opportunity": "Nueva oportunidad de financiación",
    "New need posted": "Nueva necesidad publicada",
    "Review of your solution: approved": "Revisión de su solución: aprobada",
    "Review of your solution: changes requested": "Revisión de su solución: cambios solicitados",
    "Review of your solution: rejected": "Revisión de su solución: rechazada",
    "Review of your solution: recorded": "Revisión de su solución: registrada",
    "Your solution needs confirming": "Su solución necesita confirmación",
    "Not confirmed for 24 months: please confirm it is current or update it.": (
        "Sin confirmar desde hace 24 meses: confirme que sigue vigente o actualícela."
    ),
    "Your organization is verified": "Su organización está verificada",
    "Your organization's registration was rejected": "El registro de su organización fue rechazado",
    "Your organization's verification was suspended": (
        "La verificación de su organización fue suspendida"
    ),
    "Your organization's verification expired: please reconfirm": (
        "La verificación de su organización venció: vuelva a confirmarla"
    ),
    "Funding deadline today": "El plazo de financiación vence hoy",
    "Funding deadline in 1 day": "El plazo de financiación vence en 1 día",
    "Funding deadline in {n} days": "El plazo de financiación vence en {n} días",
    "A solution is proposed for your need": "Se propone una solución para su necesidad",
    "A need your solution could answer": "Una necesidad que su solución podría atender",
    "The provider accepted the match": "El proveedor aceptó la propuesta de colaboración",
    "The seeker accepted the match": "El solicitante aceptó la propuesta de colaboración",
    "The match is accepted by both sides": "Ambas partes aceptaron la propuesta de colaboración",
    "The match was declined": "La propuesta de colaboración fue rechazada",
    "Deadline": "Plazo",
    "Outcome": "Resultado",
    "Passed": "Aprobada",
    "Reason": "Motivo",
    "Need": "Necesidad",
    "Solution": "Solución",
    "Score": "Puntuación",
    "Why": "Por qué",
    "approved": "aprobada",
    "changes requested": "cambios solicitados",
    "rejected": "rechazada",
    "recorded": "registrada",
    "yes": "sí",
    "no": "no",
    "New solutions": "Nuevas soluciones",
    "New knowledge products": "Nuevos productos de conocimiento",
    "Funding opportunities": "Oportunidades de financiación",
    "New needs": "Nuevas necesidades",
    "Your organization": "Su organización",
    "Matches for your needs": "Propuestas para sus necesidades",
    "Needs your solutions could answer": "Necesidades que sus soluciones podrían atender",
    "Daily digest, {date}": "Resumen diario, {date}",
    "Weekly digest, week of {date}": "Resumen semanal, semana del {date}",
    "1 update": "1 novedad",
    "{n} updates": "{n} novedades",
    "… and {n} more on the platform.": "… y {n} más en la plataforma.",
    "open": "abrir",
    "Unsubscribe": "Cancelar la suscripción",
}

TABLES: dict[str, dict[str, str]] = {"fr": _FRENCH, "es": _SPANISH}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def message_language(code: str) -> str:
    """The language messages are written in for a subscription's language code: its own when
    there is a table for it ("fr", "es", also "fr-CA"), English otherwise."""
    base = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in TABLES else ENGLISH


def phrase(language: str, template: str, **values: object) -> str:
    """template in language (English when it has no translation), filled with values."""
    table = TABLES.get(message_language(language), {})
    return table.get(template, template).format(**values)


@lru_cache(maxsize=16)
def _patterns(language: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    table = TABLES.get(language, {})
    return tuple(
        (re.compile(_pattern(english)), translated)
        for english, translated in table.items()
        if _PLACEHOLDER.search(english)
    )


def _pattern(template: str) -> str:
    parts = _PLACEHOLDER.split(template)
    # split alternates literal text and placeholder names.
    return (
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
        + r"\Z"
    )


def translate(language: str, text: str) -> str:
    """An English phrase as rendered (placeholders filled) in language; unknown phrases and
    languages stay as they are."""
    lang = message_language(language)
    table = TABLES.get(lang)
    if not table or not text:
        return text
    if (found := table.get(text)) is not None:
        return found
    for pattern, translated in _patterns(lang):
        if match := pattern.match(text):
            return translated.format(**match.groupdict())
    return text
