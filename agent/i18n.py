"""The user-facing strings of the offline planner, in every supported language.

One flat catalogue: a key names a message, each message has a template per
language, and templates use `str.format` placeholders. Every key exists in all
four languages with the same placeholders (pinned by a unit test), so a caller
can never hit a missing translation at run time.

Tone: informal "tú" in Spanish, "vous" in French, "du" in German.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final

from agent.answer import Language

MESSAGES: Final[Mapping[str, Mapping[Language, str]]] = {
    # ------------------------------------------------------------ conversation
    "greeting": {"en": "Hi!", "es": "¡Hola!", "fr": "Bonjour !", "de": "Hallo!"},
    "help": {
        "en": (
            "I'm vinbot, a vehicle assistant. I can decode a VIN (make, model, year, engine, transmission, "
            "where it was built), decode up to {max_vins} VINs in one message, answer follow-up questions "
            "about the last vehicle I decoded, and list the VINs you've looked up. Try: decode {example_vin}"
        ),
        "es": (
            "Soy vinbot, un asistente de vehículos. Puedo decodificar un VIN (marca, modelo, año, motor, "
            "transmisión, dónde se fabricó), decodificar hasta {max_vins} VIN en un mensaje, responder "
            "preguntas sobre el último vehículo que decodifiqué y mostrarte los VIN que has consultado. "
            "Prueba: decodifica {example_vin}"
        ),
        "fr": (
            "Je suis vinbot, un assistant automobile. Je peux décoder un VIN (marque, modèle, année, moteur, "
            "transmission, lieu de fabrication), décoder jusqu'à {max_vins} VIN dans un message, répondre "
            "aux questions sur le dernier véhicule décodé et lister les VIN que vous avez consultés. Essayez "
            ": décode {example_vin}"
        ),
        "de": (
            "Ich bin vinbot, ein Fahrzeugassistent. Ich kann eine VIN entschlüsseln (Marke, Modell, Baujahr, "
            "Motor, Getriebe, Werk), bis zu {max_vins} VINs in einer Nachricht entschlüsseln, Fragen zum "
            "zuletzt entschlüsselten Fahrzeug beantworten und die VINs zeigen, die du nachgeschlagen hast. "
            "Probier: dekodiere {example_vin}"
        ),
    },
    "capabilities": {
        "en": (
            "I can decode VINs (make, model, year, engine, transmission, where it was built), answer "
            "follow-up questions about the last vehicle I decoded, and list the VINs you've looked up. Try: "
            "decode {example_vin}"
        ),
        "es": (
            "Puedo decodificar VIN (marca, modelo, año, motor, transmisión, dónde se fabricó), responder "
            "preguntas sobre el último vehículo que decodifiqué y mostrarte los VIN que has consultado. "
            "Prueba: decodifica {example_vin}"
        ),
        "fr": (
            "Je peux décoder des VIN (marque, modèle, année, moteur, transmission, lieu de fabrication), "
            "répondre aux questions sur le dernier véhicule décodé et lister les VIN que vous avez "
            "consultés. Essayez : décode {example_vin}"
        ),
        "de": (
            "Ich kann VINs entschlüsseln (Marke, Modell, Baujahr, Motor, Getriebe, Werk), Fragen zum zuletzt "
            "entschlüsselten Fahrzeug beantworten und die VINs zeigen, die du nachgeschlagen hast. Probier: "
            "dekodiere {example_vin}"
        ),
    },
    "thanks": {
        "en": "You're welcome! Send me another VIN whenever you like.",
        "es": "¡De nada! Envíame otro VIN cuando quieras.",
        "fr": "Avec plaisir ! Envoyez-moi un autre VIN quand vous voulez.",
        "de": "Gern geschehen! Schick mir jederzeit eine weitere VIN.",
    },
    "ack": {
        "en": "Great! Send me another VIN whenever you like.",
        "es": "¡Genial! Envíame otro VIN cuando quieras.",
        "fr": "Parfait ! Envoyez-moi un autre VIN quand vous voulez.",
        "de": "Super! Schick mir jederzeit eine weitere VIN.",
    },
    "goodbye": {
        "en": "Goodbye! Come back whenever you have a VIN to decode.",
        "es": "¡Hasta luego! Vuelve cuando tengas un VIN que decodificar.",
        "fr": "Au revoir ! Revenez quand vous aurez un VIN à décoder.",
        "de": "Tschüss! Komm wieder, wenn du eine VIN entschlüsseln möchtest.",
    },
    "explain_vin": {
        "en": (
            "A VIN (vehicle identification number) is the 17-character code that identifies one vehicle: it "
            "encodes the manufacturer, the model, the model year, the plant and a serial number, using "
            "digits and every letter except I, O and Q. You'll usually find it at the bottom of the "
            "windscreen on the driver's side, on the driver's door pillar and on the registration papers. "
            "Send me one and I'll decode it, for example {example_vin}."
        ),
        "es": (
            "Un VIN (número de identificación del vehículo) es el código de 17 caracteres que identifica un "
            "vehículo: codifica el fabricante, el modelo, el año del modelo, la planta y un número de serie, "
            "con dígitos y todas las letras salvo I, O y Q. Suele estar en la base del parabrisas del lado "
            "del conductor, en el marco de la puerta del conductor y en la documentación del vehículo. "
            "Envíame uno y lo decodifico, por ejemplo {example_vin}."
        ),
        "fr": (
            "Un VIN (numéro d'identification du véhicule) est le code de 17 caractères qui identifie un "
            "véhicule : il code le constructeur, le modèle, l'année modèle, l'usine et un numéro de série, "
            "avec des chiffres et toutes les lettres sauf I, O et Q. On le trouve en général en bas du "
            "pare-brise côté conducteur, sur le montant de la portière conducteur et sur la carte grise. "
            "Envoyez-m'en un et je le décode, par exemple {example_vin}."
        ),
        "de": (
            "Eine VIN (Fahrzeug-Identifizierungsnummer) ist der 17-stellige Code, der ein Fahrzeug "
            "identifiziert: Sie enthält Hersteller, Modell, Modelljahr, Werk und eine Seriennummer, aus "
            "Ziffern und allen Buchstaben außer I, O und Q. Du findest sie meist unten an der "
            "Windschutzscheibe auf der Fahrerseite, an der B-Säule der Fahrertür und im Fahrzeugschein. "
            "Schick mir eine, dann entschlüssele ich sie, zum Beispiel {example_vin}."
        ),
    },
    "ask_vin": {
        "en": "Send me the 17-character VIN and I'll decode it, for example: decode {example_vin}",
        "es": "Envíame el VIN de 17 caracteres y lo decodifico, por ejemplo: decodifica {example_vin}",
        "fr": "Envoyez-moi le VIN de 17 caractères et je le décode, par exemple : décode {example_vin}",
        "de": (
            "Schick mir die 17-stellige VIN, dann entschlüssele ich sie, zum Beispiel: dekodiere "
            "{example_vin}"
        ),
    },
    "no_vehicle": {
        "en": (
            "Send me a VIN first and I'll answer questions about that vehicle, for example: decode "
            "{example_vin}"
        ),
        "es": (
            "Envíame primero un VIN y responderé preguntas sobre ese vehículo, por ejemplo: decodifica "
            "{example_vin}"
        ),
        "fr": (
            "Envoyez-moi d'abord un VIN et je répondrai aux questions sur ce véhicule, par exemple : décode "
            "{example_vin}"
        ),
        "de": (
            "Schick mir zuerst eine VIN, dann beantworte ich Fragen zu diesem Fahrzeug, zum Beispiel: "
            "dekodiere {example_vin}"
        ),
    },
    # ------------------------------------------------------------ the assistant around the planners
    "step_budget_exhausted": {
        "en": (
            "Sorry, I couldn't finish that answer within my step limit. Please ask again, perhaps more "
            "simply."
        ),
        "es": (
            "Lo siento, no pude terminar esa respuesta dentro de mi límite de pasos. Pregunta de nuevo, "
            "quizá de forma más sencilla."
        ),
        "fr": (
            "Désolé, je n'ai pas pu terminer cette réponse dans ma limite d'étapes. Reposez la question, "
            "peut-être plus simplement."
        ),
        "de": (
            "Entschuldigung, ich konnte die Antwort nicht innerhalb meines Schrittlimits fertigstellen. Frag "
            "bitte noch einmal, vielleicht einfacher."
        ),
    },
    "llm_unavailable_note": {
        "en": (
            "(The language model was unavailable, so this answer comes from the built-in offline assistant.)"
        ),
        "es": (
            "(El modelo de lenguaje no estaba disponible, así que esta respuesta viene del asistente "
            "offline.)"
        ),
        "fr": (
            "(Le modèle de langage était indisponible : cette réponse vient de l'assistant hors ligne "
            "intégré.)"
        ),
        "de": (
            "(Das Sprachmodell war nicht erreichbar, daher stammt diese Antwort vom eingebauten "
            "Offline-Assistenten.)"
        ),
    },
    # ------------------------------------------------------------ what it cannot do (yet)
    "unsupported.general": {
        "en": "I can't help with that (yet). {capabilities}",
        "es": "Con eso no puedo ayudarte (todavía). {capabilities}",
        "fr": "Je ne peux pas vous aider pour cela (pour l'instant). {capabilities}",
        "de": "Dabei kann ich (noch) nicht helfen. {capabilities}",
    },
    "unsupported.topic": {
        "en": "I can't answer questions about {topic} yet, and I won't guess. {capabilities}",
        "es": "Todavía no puedo responder preguntas sobre {topic}, y no voy a adivinar. {capabilities}",
        "fr": (
            "Je ne peux pas encore répondre aux questions sur {topic}, et je ne veux pas deviner. "
            "{capabilities}"
        ),
        "de": "Zum Thema „{topic}“ kann ich noch nichts sagen, und raten will ich nicht. {capabilities}",
    },
    "unsupported.topic_vehicle": {
        "en": (
            "I can't tell you about {topic} for the {vehicle} yet: a VIN decode doesn't include it, and I "
            "won't guess. I can tell you its engine, transmission, body, doors and where it was built."
        ),
        "es": (
            "Todavía no puedo darte datos sobre {topic} del {vehicle}: la decodificación del VIN no los "
            "incluye y no voy a adivinar. Puedo decirte su motor, transmisión, carrocería, puertas y dónde "
            "se fabricó."
        ),
        "fr": (
            "Je ne peux pas encore vous renseigner sur {topic} du véhicule {vehicle} : le décodage du VIN ne "
            "le contient pas, et je ne veux pas deviner. Je peux vous donner son moteur, sa transmission, sa "
            "carrosserie, ses portes et son lieu de fabrication."
        ),
        "de": (
            "Zum Thema „{topic}“ beim {vehicle} kann ich noch nichts sagen: Die VIN-Entschlüsselung enthält "
            "das nicht, und raten will ich nicht. Ich kann dir Motor, Getriebe, Karosserie, Türen und Werk "
            "nennen."
        ),
    },
    "unsupported.specs": {
        "en": (
            "I can't look up specifications by make, model and year yet. Send me the vehicle's VIN and I'll "
            "decode it, for example: decode {example_vin}"
        ),
        "es": (
            "Todavía no puedo buscar especificaciones por marca, modelo y año. Envíame el VIN del vehículo y "
            "lo decodifico, por ejemplo: decodifica {example_vin}"
        ),
        "fr": (
            "Je ne peux pas encore chercher des caractéristiques par marque, modèle et année. Envoyez-moi le "
            "VIN du véhicule et je le décode, par exemple : décode {example_vin}"
        ),
        "de": (
            "Technische Daten nach Marke, Modell und Baujahr kann ich noch nicht nachschlagen. Schick mir "
            "die VIN des Fahrzeugs, dann entschlüssele ich sie, zum Beispiel: dekodiere {example_vin}"
        ),
    },
    "topic.mpg": {
        "en": "fuel economy",
        "es": "consumo de combustible",
        "fr": "la consommation",
        "de": "Verbrauch",
    },
    "topic.range": {"en": "driving range", "es": "autonomía", "fr": "l'autonomie", "de": "Reichweite"},
    "topic.price": {
        "en": "prices and values",
        "es": "precios y valores",
        "fr": "les prix et la valeur",
        "de": "Preis und Wert",
    },
    "topic.towing": {
        "en": "towing capacity",
        "es": "capacidad de remolque",
        "fr": "la capacité de remorquage",
        "de": "Anhängelast",
    },
    "topic.recalls": {"en": "recalls", "es": "llamadas a revisión", "fr": "les rappels", "de": "Rückrufe"},
    "topic.safety": {
        "en": "safety ratings",
        "es": "calificaciones de seguridad",
        "fr": "les notes de sécurité",
        "de": "Sicherheitsbewertungen",
    },
    "topic.reliability": {
        "en": "reliability and known problems",
        "es": "fiabilidad y problemas conocidos",
        "fr": "la fiabilité et les problèmes connus",
        "de": "Zuverlässigkeit und bekannte Probleme",
    },
    "topic.compare": {
        "en": "vehicle comparisons",
        "es": "comparaciones de vehículos",
        "fr": "les comparaisons de véhicules",
        "de": "Fahrzeugvergleiche",
    },
    "topic.bulk": {
        "en": "bulk jobs",
        "es": "trabajos masivos",
        "fr": "les traitements en masse",
        "de": "Massenaufträge",
    },
    "bulk.too_many": {
        "en": (
            "You sent {count} VINs. I can decode up to {max_vins} in one message; larger lists are handled "
            "by bulk jobs, which I can't start from this chat yet. Please send them in groups of {max_vins} "
            "or fewer."
        ),
        "es": (
            "Has enviado {count} VIN. Puedo decodificar hasta {max_vins} por mensaje; las listas más grandes "
            "se procesan con trabajos masivos, que todavía no puedo iniciar desde este chat. Envíalos en "
            "grupos de {max_vins} o menos."
        ),
        "fr": (
            "Vous avez envoyé {count} VIN. Je peux en décoder jusqu'à {max_vins} par message ; les listes "
            "plus longues passent par des traitements en masse, que je ne peux pas encore lancer depuis "
            "cette conversation. Envoyez-les par groupes de {max_vins} au plus."
        ),
        "de": (
            "Du hast {count} VINs geschickt. Ich kann bis zu {max_vins} pro Nachricht entschlüsseln; größere "
            "Listen laufen über Massenaufträge, die ich in diesem Chat noch nicht starten kann. Schick sie "
            "bitte in Gruppen von höchstens {max_vins}."
        ),
    },
    # ------------------------------------------------------------ decodes
    "decode.summary": {
        "en": "That VIN belongs to a {vehicle}{details}.",
        "es": "Ese VIN corresponde a un {vehicle}{details}.",
        "fr": "Ce VIN correspond au véhicule {vehicle}{details}.",
        "de": "Diese VIN gehört zu einem {vehicle}{details}.",
    },
    "decode.summary_no_year": {
        "en": "That VIN decodes to {vehicle}{details}.",
        "es": "Ese VIN corresponde a: {vehicle}{details}.",
        "fr": "Ce VIN correspond à : {vehicle}{details}.",
        "de": "Diese VIN gehört zu: {vehicle}{details}.",
    },
    "decode.details_sep": {"en": ": ", "es": ": ", "fr": " : ", "de": ": "},
    "decode.built_in": {
        "en": "built in {place}",
        "es": "fabricado en {place}",
        "fr": "construit à {place}",
        "de": "gebaut in {place}",
    },
    "decode.check_digit": {
        "en": (
            "Note: its check digit (9th character) doesn't match, so the VIN may be mistyped (VINs from "
            "outside North America often don't use one)."
        ),
        "es": (
            "Ojo: su dígito de control (9.º carácter) no cuadra, así que el VIN puede estar mal escrito (los "
            "VIN de fuera de Norteamérica a menudo no lo usan)."
        ),
        "fr": (
            "Attention : sa clé de contrôle (9e caractère) ne correspond pas, le VIN est peut-être mal saisi "
            "(les VIN hors Amérique du Nord n'en utilisent souvent pas)."
        ),
        "de": (
            "Hinweis: Die Prüfziffer (9. Stelle) stimmt nicht, die VIN ist also vielleicht vertippt (VINs "
            "von außerhalb Nordamerikas nutzen oft keine)."
        ),
    },
    "decode.did_you_mean": {
        "en": "Did you mean {options}?",
        "es": "¿Quisiste decir {options}?",
        "fr": "Vouliez-vous dire {options} ?",
        "de": "Meintest du {options}?",
    },
    "decode.note": {
        "en": "Note: {warning}.",
        "es": "Ojo: {warning}.",
        "fr": "Attention : {warning}.",
        "de": "Hinweis: {warning}.",
    },
    "decode.fallback_offline": {
        "en": "The live NHTSA service was unavailable, so this comes from the offline vPIC copy.",
        "es": (
            "El servicio en línea de la NHTSA no estaba disponible, así que esto viene de la copia offline "
            "de vPIC."
        ),
        "fr": (
            "Le service en ligne de la NHTSA était indisponible : ces données viennent de la copie hors "
            "ligne de vPIC."
        ),
        "de": (
            "Der Online-Dienst der NHTSA war nicht erreichbar, daher stammt das aus der Offline-Kopie von "
            "vPIC."
        ),
    },
    "decode.fallback_other": {
        "en": "The primary decoding service was unavailable, so this comes from {provider}.",
        "es": (
            "El servicio de decodificación principal no estaba disponible, así que esto viene de {provider}."
        ),
        "fr": "Le service de décodage principal était indisponible : ces données viennent de {provider}.",
        "de": "Der primäre Entschlüsselungsdienst war nicht erreichbar, daher stammt das von {provider}.",
    },
    "decode.invalid": {
        "en": "I couldn't decode {vin}: {reasons}.",
        "es": "No pude decodificar {vin}: {reasons}.",
        "fr": "Je n'ai pas pu décoder {vin} : {reasons}.",
        "de": "Ich konnte {vin} nicht entschlüsseln: {reasons}.",
    },
    "warn.check_digit": {
        "en": "the check digit (9th character) doesn't match",
        "es": "el dígito de control (9.º carácter) no cuadra",
        "fr": "la clé de contrôle (9e caractère) ne correspond pas",
        "de": "die Prüfziffer (9. Stelle) stimmt nicht",
    },
    "warn.corrected": {
        "en": "the VIN seems to have an error in one position",
        "es": "el VIN parece tener un error en una posición",
        "fr": "le VIN semble avoir une erreur à une position",
        "de": "die VIN scheint an einer Stelle falsch zu sein",
    },
    "warn.errors": {
        "en": "the VIN has errors in several positions",
        "es": "el VIN tiene errores en varias posiciones",
        "fr": "le VIN a des erreurs à plusieurs positions",
        "de": "die VIN hat an mehreren Stellen Fehler",
    },
    "warn.incomplete": {
        "en": "the VIN is incomplete",
        "es": "el VIN está incompleto",
        "fr": "le VIN est incomplet",
        "de": "die VIN ist unvollständig",
    },
    "warn.manufacturer": {
        "en": "its manufacturer code is not registered with NHTSA",
        "es": "su código de fabricante no está registrado en la NHTSA",
        "fr": "son code constructeur n'est pas enregistré auprès de la NHTSA",
        "de": "der Herstellercode ist bei der NHTSA nicht registriert",
    },
    "warn.no_data": {
        "en": "no detailed data is available for it yet",
        "es": "todavía no hay datos detallados para él",
        "fr": "aucune donnée détaillée n'est encore disponible",
        "de": "dafür gibt es noch keine genauen Daten",
    },
    "warn.off_road": {
        "en": "it looks like an off-road vehicle, which NHTSA does not cover",
        "es": "parece un vehículo todoterreno no homologado para carretera, que la NHTSA no cubre",
        "fr": "il semble s'agir d'un véhicule tout-terrain, que la NHTSA ne couvre pas",
        "de": "es scheint ein Geländefahrzeug ohne Straßenzulassung zu sein, das die NHTSA nicht abdeckt",
    },
    "warn.model_year": {
        "en": "the model year may be wrong, so some details may not be accurate",
        "es": "el año del modelo puede ser incorrecto, así que algunos datos pueden no ser exactos",
        "fr": "l'année modèle est peut-être fausse, certains détails peuvent donc être inexacts",
        "de": "das Modelljahr ist vielleicht falsch, daher sind manche Angaben evtl. ungenau",
    },
    "warn.partial": {
        "en": "not every character of the VIN could be decoded",
        "es": "no se pudieron decodificar todos los caracteres del VIN",
        "fr": "tous les caractères du VIN n'ont pas pu être décodés",
        "de": "nicht alle Stellen der VIN ließen sich entschlüsseln",
    },
    "warn.invalid_chars": {
        "en": "it contains characters that are not valid at their position",
        "es": "contiene caracteres que no son válidos en su posición",
        "fr": "il contient des caractères non valides à leur position",
        "de": "sie enthält Zeichen, die an ihrer Stelle ungültig sind",
    },
    "warn.unknown": {
        "en": "the decoder found no vehicle data for it",
        "es": "el decodificador no encontró datos del vehículo",
        "fr": "le décodeur n'a trouvé aucune donnée de véhicule",
        "de": "der Decoder hat keine Fahrzeugdaten dazu gefunden",
    },
    # ------------------------------------------------------------ tool errors
    "error.invalid_vin": {
        "en": "{vin} is not a valid VIN: a VIN has 17 digits and letters (no I, O or Q).",
        "es": "{vin} no es un VIN válido: un VIN tiene 17 dígitos y letras (sin I, O ni Q).",
        "fr": "{vin} n'est pas un VIN valide : un VIN compte 17 chiffres et lettres (sans I, O ni Q).",
        "de": "{vin} ist keine gültige VIN: Eine VIN hat 17 Ziffern und Buchstaben (ohne I, O und Q).",
    },
    "error.invalid_vin.empty": {
        "en": "I didn't get a VIN. A VIN has 17 digits and letters.",
        "es": "No recibí ningún VIN. Un VIN tiene 17 dígitos y letras.",
        "fr": "Je n'ai pas reçu de VIN. Un VIN compte 17 chiffres et lettres.",
        "de": "Ich habe keine VIN bekommen. Eine VIN hat 17 Ziffern und Buchstaben.",
    },
    "error.invalid_vin.too_short": {
        "en": "{vin} has {length} characters, but a VIN has exactly 17.",
        "es": "{vin} tiene {length} caracteres, pero un VIN tiene exactamente 17.",
        "fr": "{vin} compte {length} caractères, alors qu'un VIN en compte exactement 17.",
        "de": "{vin} hat {length} Zeichen, eine VIN hat aber genau 17.",
    },
    "error.invalid_vin.too_long": {
        "en": "{vin} has {length} characters, but a VIN has exactly 17.",
        "es": "{vin} tiene {length} caracteres, pero un VIN tiene exactamente 17.",
        "fr": "{vin} compte {length} caractères, alors qu'un VIN en compte exactement 17.",
        "de": "{vin} hat {length} Zeichen, eine VIN hat aber genau 17.",
    },
    "error.invalid_vin.forbidden_letters": {
        "en": (
            "{vin} contains {letters}, but VINs never use I, O or Q (they are easily confused with 1 and 0)."
        ),
        "es": (
            "{vin} contiene {letters}, pero los VIN nunca usan I, O ni Q (se confunden fácilmente con 1 y 0)."
        ),
        "fr": "{vin} contient {letters}, or les VIN n'utilisent jamais I, O ni Q (trop proches de 1 et 0).",
        "de": (
            "{vin} enthält {letters}, aber VINs verwenden nie I, O oder Q (zu leicht mit 1 und 0 zu "
            "verwechseln)."
        ),
    },
    "error.invalid_vin.invalid_characters": {
        "en": (
            "{vin} contains characters a VIN can't have: only digits and the letters A-Z except I, O and Q "
            "are allowed."
        ),
        "es": (
            "{vin} contiene caracteres que un VIN no puede tener: solo se permiten dígitos y las letras A-Z "
            "salvo I, O y Q."
        ),
        "fr": (
            "{vin} contient des caractères impossibles dans un VIN : seuls les chiffres et les lettres A-Z "
            "sauf I, O et Q sont permis."
        ),
        "de": (
            "{vin} enthält Zeichen, die in einer VIN nicht vorkommen: Erlaubt sind nur Ziffern und die "
            "Buchstaben A-Z außer I, O und Q."
        ),
    },
    "error.partial_hint": {
        "en": "It may be a partial VIN; check the last characters.",
        "es": "Puede que sea un VIN incompleto; revisa los últimos caracteres.",
        "fr": "C'est peut-être un VIN partiel ; vérifiez les derniers caractères.",
        "de": "Vielleicht fehlt ein Teil; prüf die letzten Zeichen.",
    },
    "error.invalid_input": {
        "en": "Something in that request isn't valid. Please check it and try again.",
        "es": "Algo en esa petición no es válido. Revísalo y vuelve a intentarlo.",
        "fr": "Quelque chose dans cette demande n'est pas valide. Vérifiez-la et réessayez.",
        "de": "Etwas an dieser Anfrage ist ungültig. Bitte prüf sie und versuch es noch einmal.",
    },
    "error.invalid_year": {
        "en": "The model year {year} is out of range, so I couldn't decode {vin} with it.",
        "es": "El año del modelo {year} está fuera de rango, así que no pude decodificar {vin} con él.",
        "fr": "L'année modèle {year} est hors limites, je n'ai donc pas pu décoder {vin} avec elle.",
        "de": (
            "Das Modelljahr {year} liegt außerhalb des gültigen Bereichs, daher konnte ich {vin} damit nicht "
            "entschlüsseln."
        ),
    },
    "error.not_allowed": {
        "en": "That isn't available on your plan or isn't enabled here.",
        "es": "Eso no está disponible en tu plan o no está activado aquí.",
        "fr": "Ce n'est pas disponible avec votre offre ou pas activé ici.",
        "de": "Das ist in deinem Tarif nicht enthalten oder hier nicht aktiviert.",
    },
    "error.rate_limited": {
        "en": "You've reached your decode limit for now. Please try again in {wait}.",
        "es": "Has alcanzado tu límite de decodificaciones por ahora. Vuelve a intentarlo en {wait}.",
        "fr": "Vous avez atteint votre limite de décodages pour le moment. Réessayez dans {wait}.",
        "de": "Du hast dein Entschlüsselungslimit vorerst erreicht. Versuch es in {wait} noch einmal.",
    },
    "error.provider_unavailable": {
        "en": "The VIN decoding service isn't available right now. Please try again in a moment.",
        "es": (
            "El servicio de decodificación de VIN no está disponible ahora mismo. Inténtalo de nuevo en un "
            "momento."
        ),
        "fr": "Le service de décodage de VIN est indisponible pour le moment. Réessayez dans un instant.",
        "de": "Der VIN-Entschlüsselungsdienst ist gerade nicht erreichbar. Versuch es gleich noch einmal.",
    },
    "error.bad_provider_response": {
        "en": "The decoding service sent an answer I couldn't read. Please try again later.",
        "es": "El servicio de decodificación envió una respuesta que no pude leer. Inténtalo más tarde.",
        "fr": "Le service de décodage a envoyé une réponse illisible. Réessayez plus tard.",
        "de": (
            "Der Entschlüsselungsdienst hat eine unlesbare Antwort geschickt. Versuch es später noch einmal."
        ),
    },
    "error.vin_not_in_conversation": {
        "en": "I can only decode VINs you've written in this conversation. Please send the VIN.",
        "es": "Solo puedo decodificar VIN que hayas escrito en esta conversación. Envíame el VIN.",
        "fr": "Je ne peux décoder que des VIN écrits dans cette conversation. Envoyez-moi le VIN.",
        "de": (
            "Ich kann nur VINs entschlüsseln, die du in diesem Gespräch geschrieben hast. Schick mir die VIN."
        ),
    },
    "error.unknown": {
        "en": "Something went wrong while looking that up. Please try again.",
        "es": "Algo salió mal al consultarlo. Inténtalo de nuevo.",
        "fr": "Un problème est survenu pendant la recherche. Réessayez.",
        "de": "Beim Nachschlagen ist etwas schiefgegangen. Versuch es noch einmal.",
    },
    "result.unsupported": {
        "en": "I got a result, but I can't summarise it here yet.",
        "es": "Obtuve un resultado, pero todavía no puedo resumirlo aquí.",
        "fr": "J'ai obtenu un résultat, mais je ne peux pas encore le résumer ici.",
        "de": "Ich habe ein Ergebnis, kann es hier aber noch nicht zusammenfassen.",
    },
    "wait.seconds.one": {
        "en": "{count} second",
        "es": "{count} segundo",
        "fr": "{count} seconde",
        "de": "{count} Sekunde",
    },
    "wait.seconds.other": {
        "en": "{count} seconds",
        "es": "{count} segundos",
        "fr": "{count} secondes",
        "de": "{count} Sekunden",
    },
    "wait.minutes.one": {
        "en": "{count} minute",
        "es": "{count} minuto",
        "fr": "{count} minute",
        "de": "{count} Minute",
    },
    "wait.minutes.other": {
        "en": "{count} minutes",
        "es": "{count} minutos",
        "fr": "{count} minutes",
        "de": "{count} Minuten",
    },
    "wait.hours.one": {
        "en": "{count} hour",
        "es": "{count} hora",
        "fr": "{count} heure",
        "de": "{count} Stunde",
    },
    "wait.hours.other": {
        "en": "{count} hours",
        "es": "{count} horas",
        "fr": "{count} heures",
        "de": "{count} Stunden",
    },
    # ------------------------------------------------------------ several VINs, history
    "multi.header": {
        "en": "Here's what I found for the {count} VINs:",
        "es": "Esto es lo que encontré para los {count} VIN:",
        "fr": "Voici ce que j'ai trouvé pour les {count} VIN :",
        "de": "Das habe ich zu den {count} VINs gefunden:",
    },
    "multi.line": {
        "en": "{vin}: {summary}",
        "es": "{vin}: {summary}",
        "fr": "{vin} : {summary}",
        "de": "{vin}: {summary}",
    },
    "multi.check_digit": {
        "en": "check digit doesn't match",
        "es": "el dígito de control no cuadra",
        "fr": "la clé de contrôle ne correspond pas",
        "de": "Prüfziffer stimmt nicht",
    },
    "history.empty": {
        "en": "You have not looked up any VIN yet.",
        "es": "Todavía no has consultado ningún VIN.",
        "fr": "Vous n'avez encore consulté aucun VIN.",
        "de": "Du hast noch keine VIN nachgeschlagen.",
    },
    "history.own_only": {
        "en": "I can only show your own look-ups.",
        "es": "Solo puedo mostrarte tus propias consultas.",
        "fr": "Je peux seulement vous montrer vos propres recherches.",
        "de": "Ich kann dir nur deine eigenen Suchen zeigen.",
    },
    "history.header": {
        "en": "Your most recent look-ups:",
        "es": "Tus consultas más recientes:",
        "fr": "Vos dernières recherches :",
        "de": "Deine letzten Suchen:",
    },
    "history.line": {
        "en": "{date}: {vehicle} ({vin})",
        "es": "{date}: {vehicle} ({vin})",
        "fr": "{date} : {vehicle} ({vin})",
        "de": "{date}: {vehicle} ({vin})",
    },
    "history.line_invalid": {
        "en": "{date}: {vin} (could not be decoded)",
        "es": "{date}: {vin} (no se pudo decodificar)",
        "fr": "{date} : {vin} (décodage impossible)",
        "de": "{date}: {vin} (nicht entschlüsselbar)",
    },
    # ------------------------------------------------------------ follow-up facts
    "follow_up.which": {
        "en": (
            "I decoded {count} vehicles: {vehicles}. Which one do you mean? For example: what year is the "
            "first one?"
        ),
        "es": (
            "Decodifiqué {count} vehículos: {vehicles}. ¿Cuál de ellos? Por ejemplo: ¿de qué año es el "
            "primero?"
        ),
        "fr": (
            "J'ai décodé {count} véhicules : {vehicles}. Lequel voulez-vous dire ? Par exemple : de quelle "
            "année est le premier ?"
        ),
        "de": (
            "Ich habe {count} Fahrzeuge entschlüsselt: {vehicles}. Welches meinst du? Zum Beispiel: Welches "
            "Baujahr hat das erste?"
        ),
    },
    "follow_up.out_of_range.one": {
        "en": "My last decode had only {count} vehicle, so there is no number {position}.",
        "es": "Mi última decodificación tenía solo {count} vehículo, así que no hay un número {position}.",
        "fr": "Mon dernier décodage ne comptait qu'{count} véhicule : il n'y a pas de numéro {position}.",
        "de": "Meine letzte Entschlüsselung hatte nur {count} Fahrzeug, eine Nummer {position} gibt es also "
        "nicht.",
    },
    "follow_up.out_of_range.other": {
        "en": "My last decode had only {count} vehicles, so there is no number {position}.",
        "es": "Mi última decodificación tenía solo {count} vehículos, así que no hay un número {position}.",
        "fr": "Mon dernier décodage ne comptait que {count} véhicules : il n'y a pas de numéro {position}.",
        "de": "Meine letzte Entschlüsselung hatte nur {count} Fahrzeuge, eine Nummer {position} gibt es "
        "also nicht.",
    },
    "follow_up.not_decoded": {
        "en": "I couldn't decode {vin}, so I have no details about that one.",
        "es": "No pude decodificar {vin}, así que no tengo datos de ese.",
        "fr": "Je n'ai pas pu décoder {vin} : je n'ai donc aucune information sur celui-là.",
        "de": "{vin} konnte ich nicht entschlüsseln, daher habe ich dazu keine Angaben.",
    },
    "fact.year": {
        "en": "The {vehicle} is model year {year}.",
        "es": "El {vehicle} es del año modelo {year}.",
        "fr": "Le véhicule {vehicle} est de l'année modèle {year}.",
        "de": "Der {vehicle} hat das Modelljahr {year}.",
    },
    "fact.make": {
        "en": "The {vehicle} is made by {make}.",
        "es": "El {vehicle} es de la marca {make}.",
        "fr": "Le véhicule {vehicle} est de la marque {make}.",
        "de": "Der {vehicle} ist von {make}.",
    },
    "fact.plant": {
        "en": "The {vehicle} was built in {place}.",
        "es": "El {vehicle} se fabricó en {place}.",
        "fr": "Le véhicule {vehicle} a été construit à {place}.",
        "de": "Der {vehicle} wurde in {place} gebaut.",
    },
    "fact.doors": {
        "en": "The {vehicle} has {doors} doors.",
        "es": "El {vehicle} tiene {doors} puertas.",
        "fr": "Le véhicule {vehicle} a {doors} portes.",
        "de": "Der {vehicle} hat {doors} Türen.",
    },
    "fact.hp": {
        "en": "The {vehicle} has {hp}.",
        "es": "El {vehicle} tiene {hp}.",
        "fr": "Le véhicule {vehicle} développe {hp}.",
        "de": "Der {vehicle} hat {hp}.",
    },
    "fact.fuel": {
        "en": "The {vehicle} runs on {fuel}.",
        "es": "El {vehicle} usa {fuel}.",
        "fr": "Énergie du véhicule {vehicle} : {fuel}.",
        "de": "Der {vehicle} fährt mit {fuel}.",
    },
    "fact.generic": {
        "en": "{vehicle} — {field}: {value}.",
        "es": "{vehicle} — {field}: {value}.",
        "fr": "{vehicle} — {field} : {value}.",
        "de": "{vehicle} — {field}: {value}.",
    },
    "fact.missing": {
        "en": "The VIN decode of the {vehicle} doesn't include that ({field}).",
        "es": "La decodificación del VIN del {vehicle} no incluye ese dato ({field}).",
        "fr": "Le décodage du VIN du véhicule {vehicle} ne contient pas cette information ({field}).",
        "de": "Die VIN-Entschlüsselung des {vehicle} enthält diese Angabe nicht ({field}).",
    },
    "field.year": {"en": "model year", "es": "año del modelo", "fr": "année modèle", "de": "Modelljahr"},
    "field.make": {"en": "make", "es": "marca", "fr": "marque", "de": "Marke"},
    "field.model": {"en": "model", "es": "modelo", "fr": "modèle", "de": "Modell"},
    "field.trim": {"en": "trim", "es": "versión", "fr": "finition", "de": "Ausstattung"},
    "field.engine": {"en": "engine", "es": "motor", "fr": "moteur", "de": "Motor"},
    "field.hp": {"en": "horsepower", "es": "potencia", "fr": "puissance", "de": "Leistung"},
    "field.transmission": {"en": "transmission", "es": "transmisión", "fr": "transmission", "de": "Getriebe"},
    "field.drive": {"en": "drive type", "es": "tracción", "fr": "type de transmission", "de": "Antrieb"},
    "field.body": {"en": "body style", "es": "carrocería", "fr": "carrosserie", "de": "Karosserie"},
    "field.doors": {
        "en": "number of doors",
        "es": "número de puertas",
        "fr": "nombre de portes",
        "de": "Anzahl der Türen",
    },
    "field.fuel": {"en": "fuel type", "es": "combustible", "fr": "carburant", "de": "Kraftstoff"},
    "field.plant": {
        "en": "assembly plant",
        "es": "planta de montaje",
        "fr": "usine d'assemblage",
        "de": "Werk",
    },
    "field.weight": {
        "en": "weight rating (GVWR)",
        "es": "peso bruto vehicular (GVWR)",
        "fr": "PTAC (GVWR)",
        "de": "zulässiges Gesamtgewicht (GVWR)",
    },
    # ------------------------------------------------------------ vehicle vocabulary
    "engine.inline": {
        "en": "inline-{n}",
        "es": "{n} cilindros en línea",
        "fr": "{n} cylindres en ligne",
        "de": "Reihen-{n}-Zylinder",
    },
    "engine.v": {"en": "V{n}", "es": "V{n}", "fr": "V{n}", "de": "V{n}"},
    "engine.w": {"en": "W{n}", "es": "W{n}", "fr": "W{n}", "de": "W{n}"},
    "engine.flat": {
        "en": "flat-{n}",
        "es": "bóxer de {n} cilindros",
        "fr": "{n} cylindres à plat",
        "de": "{n}-Zylinder-Boxer",
    },
    "engine.cylinders": {
        "en": "{n}-cylinder",
        "es": "{n} cilindros",
        "fr": "{n} cylindres",
        "de": "{n}-Zylinder",
    },
    "engine.with_displacement": {
        "en": "{displacement} L {layout}",
        "es": "{layout} de {displacement} L",
        "fr": "{layout} de {displacement} L",
        "de": "{layout} mit {displacement} l",
    },
    "engine.displacement": {
        "en": "{displacement} L engine",
        "es": "motor de {displacement} L",
        "fr": "moteur de {displacement} L",
        "de": "{displacement}-l-Motor",
    },
    "engine.electric": {
        "en": "electric motor",
        "es": "motor eléctrico",
        "fr": "moteur électrique",
        "de": "Elektromotor",
    },
    "engine.hp": {"en": "{hp} hp", "es": "{hp} hp", "fr": "{hp} hp", "de": "{hp} hp"},
    "engine.metric_hp": {"en": "{ps} PS", "es": "{ps} CV", "fr": "{ps} ch", "de": "{ps} PS"},
    "engine.turbo": {"en": "turbo", "es": "turbo", "fr": "turbo", "de": "Turbo"},
    "engine.hybrid": {"en": "hybrid", "es": "híbrido", "fr": "hybride", "de": "Hybrid"},
    "engine.plug_in_hybrid": {
        "en": "plug-in hybrid",
        "es": "híbrido enchufable",
        "fr": "hybride rechargeable",
        "de": "Plug-in-Hybrid",
    },
    "fuel.gasoline": {"en": "gasoline", "es": "gasolina", "fr": "essence", "de": "Benzin"},
    "fuel.diesel": {"en": "diesel", "es": "diésel", "fr": "diesel", "de": "Diesel"},
    "fuel.electric": {"en": "electricity", "es": "electricidad", "fr": "électricité", "de": "Strom"},
    "fuel.flex": {
        "en": "flex fuel (gasoline/ethanol)",
        "es": "combustible flexible (gasolina/etanol)",
        "fr": "carburant modulable (essence/éthanol)",
        "de": "Flexfuel (Benzin/Ethanol)",
    },
    "fuel.cng": {
        "en": "compressed natural gas",
        "es": "gas natural comprimido",
        "fr": "gaz naturel comprimé",
        "de": "Erdgas (CNG)",
    },
    "fuel.lpg": {"en": "LPG", "es": "GLP", "fr": "GPL", "de": "Autogas (LPG)"},
    "fuel.hydrogen": {"en": "hydrogen", "es": "hidrógeno", "fr": "hydrogène", "de": "Wasserstoff"},
    "body.coupe": {"en": "coupe", "es": "cupé", "fr": "coupé", "de": "Coupé"},
    "body.sedan": {"en": "sedan", "es": "sedán", "fr": "berline", "de": "Limousine"},
    "body.hatchback": {"en": "hatchback", "es": "hatchback", "fr": "berline à hayon", "de": "Schrägheck"},
    "body.suv": {"en": "SUV", "es": "SUV", "fr": "SUV", "de": "SUV"},
    "body.crossover": {"en": "crossover", "es": "crossover", "fr": "crossover", "de": "Crossover"},
    "body.pickup": {"en": "pickup", "es": "pickup", "fr": "pick-up", "de": "Pick-up"},
    "body.convertible": {"en": "convertible", "es": "descapotable", "fr": "cabriolet", "de": "Cabrio"},
    "body.wagon": {"en": "station wagon", "es": "familiar", "fr": "break", "de": "Kombi"},
    "body.minivan": {"en": "minivan", "es": "monovolumen", "fr": "monospace", "de": "Van"},
    "body.van": {"en": "van", "es": "furgoneta", "fr": "fourgon", "de": "Transporter"},
    "body.truck": {"en": "truck", "es": "camión", "fr": "camion", "de": "Lkw"},
    "body.motorcycle": {"en": "motorcycle", "es": "motocicleta", "fr": "moto", "de": "Motorrad"},
    "body.bus": {"en": "bus", "es": "autobús", "fr": "bus", "de": "Bus"},
    "body.roadster": {"en": "roadster", "es": "roadster", "fr": "roadster", "de": "Roadster"},
    "trans.automatic": {"en": "automatic", "es": "automática", "fr": "automatique", "de": "Automatik"},
    "trans.manual": {"en": "manual", "es": "manual", "fr": "manuelle", "de": "Schaltgetriebe"},
    "trans.cvt": {"en": "CVT", "es": "CVT", "fr": "CVT", "de": "CVT"},
    "trans.dct": {
        "en": "dual-clutch",
        "es": "de doble embrague",
        "fr": "à double embrayage",
        "de": "Doppelkupplungsgetriebe",
    },
    "trans.amt": {
        "en": "automated manual",
        "es": "manual automatizada",
        "fr": "manuelle robotisée",
        "de": "automatisiertes Schaltgetriebe",
    },
    "trans.with_speeds": {
        "en": "{speeds}-speed {style}",
        "es": "transmisión {style} de {speeds} velocidades",
        "fr": "boîte {style} à {speeds} rapports",
        "de": "{speeds}-Gang-{style}",
    },
    "trans.plain": {
        "en": "{style} transmission",
        "es": "transmisión {style}",
        "fr": "boîte {style}",
        "de": "{style}",
    },
    "country.united_states": {"en": "United States", "es": "Estados Unidos", "fr": "États-Unis", "de": "USA"},
    "country.canada": {"en": "Canada", "es": "Canadá", "fr": "Canada", "de": "Kanada"},
    "country.mexico": {"en": "Mexico", "es": "México", "fr": "Mexique", "de": "Mexiko"},
    "country.germany": {"en": "Germany", "es": "Alemania", "fr": "Allemagne", "de": "Deutschland"},
    "country.japan": {"en": "Japan", "es": "Japón", "fr": "Japon", "de": "Japan"},
    "country.south_korea": {
        "en": "South Korea",
        "es": "Corea del Sur",
        "fr": "Corée du Sud",
        "de": "Südkorea",
    },
    "country.china": {"en": "China", "es": "China", "fr": "Chine", "de": "China"},
    "country.united_kingdom": {
        "en": "United Kingdom",
        "es": "Reino Unido",
        "fr": "Royaume-Uni",
        "de": "Vereinigtes Königreich",
    },
    "country.france": {"en": "France", "es": "Francia", "fr": "France", "de": "Frankreich"},
    "country.italy": {"en": "Italy", "es": "Italia", "fr": "Italie", "de": "Italien"},
    "country.spain": {"en": "Spain", "es": "España", "fr": "Espagne", "de": "Spanien"},
    "country.sweden": {"en": "Sweden", "es": "Suecia", "fr": "Suède", "de": "Schweden"},
    "country.brazil": {"en": "Brazil", "es": "Brasil", "fr": "Brésil", "de": "Brasilien"},
    "country.england": {"en": "England", "es": "Inglaterra", "fr": "Angleterre", "de": "England"},
    "country.scotland": {"en": "Scotland", "es": "Escocia", "fr": "Écosse", "de": "Schottland"},
    "country.northern_ireland": {
        "en": "Northern Ireland",
        "es": "Irlanda del Norte",
        "fr": "Irlande du Nord",
        "de": "Nordirland",
    },
    "country.slovakia": {"en": "Slovakia", "es": "Eslovaquia", "fr": "Slovaquie", "de": "Slowakei"},
    "country.belgium": {"en": "Belgium", "es": "Bélgica", "fr": "Belgique", "de": "Belgien"},
    "country.hungary": {"en": "Hungary", "es": "Hungría", "fr": "Hongrie", "de": "Ungarn"},
    "country.austria": {"en": "Austria", "es": "Austria", "fr": "Autriche", "de": "Österreich"},
    "country.finland": {"en": "Finland", "es": "Finlandia", "fr": "Finlande", "de": "Finnland"},
    "country.netherlands": {
        "en": "Netherlands",
        "es": "Países Bajos",
        "fr": "Pays-Bas",
        "de": "Niederlande",
    },
    "country.czech_republic": {
        "en": "Czech Republic",
        "es": "República Checa",
        "fr": "République tchèque",
        "de": "Tschechien",
    },
    "country.poland": {"en": "Poland", "es": "Polonia", "fr": "Pologne", "de": "Polen"},
    "country.portugal": {"en": "Portugal", "es": "Portugal", "fr": "Portugal", "de": "Portugal"},
    "country.slovenia": {"en": "Slovenia", "es": "Eslovenia", "fr": "Slovénie", "de": "Slowenien"},
    "country.serbia": {"en": "Serbia", "es": "Serbia", "fr": "Serbie", "de": "Serbien"},
    "country.romania": {"en": "Romania", "es": "Rumanía", "fr": "Roumanie", "de": "Rumänien"},
    "country.russia": {"en": "Russia", "es": "Rusia", "fr": "Russie", "de": "Russland"},
    "country.turkey": {"en": "Turkey", "es": "Turquía", "fr": "Turquie", "de": "Türkei"},
    "country.denmark": {"en": "Denmark", "es": "Dinamarca", "fr": "Danemark", "de": "Dänemark"},
    "country.norway": {"en": "Norway", "es": "Noruega", "fr": "Norvège", "de": "Norwegen"},
    "country.switzerland": {"en": "Switzerland", "es": "Suiza", "fr": "Suisse", "de": "Schweiz"},
    "country.south_africa": {
        "en": "South Africa",
        "es": "Sudáfrica",
        "fr": "Afrique du Sud",
        "de": "Südafrika",
    },
    "country.egypt": {"en": "Egypt", "es": "Egipto", "fr": "Égypte", "de": "Ägypten"},
    "country.morocco": {"en": "Morocco", "es": "Marruecos", "fr": "Maroc", "de": "Marokko"},
    "country.india": {"en": "India", "es": "India", "fr": "Inde", "de": "Indien"},
    "country.thailand": {"en": "Thailand", "es": "Tailandia", "fr": "Thaïlande", "de": "Thailand"},
    "country.taiwan": {"en": "Taiwan", "es": "Taiwán", "fr": "Taïwan", "de": "Taiwan"},
    "country.indonesia": {"en": "Indonesia", "es": "Indonesia", "fr": "Indonésie", "de": "Indonesien"},
    "country.malaysia": {"en": "Malaysia", "es": "Malasia", "fr": "Malaisie", "de": "Malaysia"},
    "country.vietnam": {"en": "Vietnam", "es": "Vietnam", "fr": "Viêt Nam", "de": "Vietnam"},
    "country.philippines": {
        "en": "Philippines",
        "es": "Filipinas",
        "fr": "Philippines",
        "de": "Philippinen",
    },
    "country.australia": {"en": "Australia", "es": "Australia", "fr": "Australie", "de": "Australien"},
    "country.argentina": {"en": "Argentina", "es": "Argentina", "fr": "Argentine", "de": "Argentinien"},
    "country.colombia": {"en": "Colombia", "es": "Colombia", "fr": "Colombie", "de": "Kolumbien"},
    "country.venezuela": {"en": "Venezuela", "es": "Venezuela", "fr": "Venezuela", "de": "Venezuela"},
    # ------------------------------------------------------------ vehicle knowledge
    "help.knowledge": {
        "en": (
            "I also answer questions about fuel economy, electric range, horsepower, fuel cost and recalls "
            "by year, make and model, and compare vehicles. Try: 2019 Toyota RAV4 vs 2019 Honda CR-V"
        ),
        "es": (
            "También respondo sobre consumo, autonomía eléctrica, potencia, coste de combustible y "
            "llamadas a revisión por año, marca y modelo, y comparo vehículos. Prueba: Toyota RAV4 2019 o "
            "Honda CR-V 2019"
        ),
        "fr": (
            "Je réponds aussi sur la consommation, l'autonomie électrique, la puissance, le coût du "
            "carburant et les rappels par année, marque et modèle, et je compare des véhicules. "
            "Essayez : Toyota RAV4 2019 ou Honda CR-V 2019"
        ),
        "de": (
            "Ich beantworte auch Fragen zu Verbrauch, elektrischer Reichweite, Leistung, Kraftstoffkosten "
            "und Rückrufen nach Baujahr, Marke und Modell und vergleiche Fahrzeuge. Probier: Toyota "
            "RAV4 2019 oder Honda CR-V 2019"
        ),
    },
    "spec.header.one": {
        "en": "{vehicle}: 1 configuration in the data.",
        "es": "{vehicle}: 1 configuración en los datos.",
        "fr": "{vehicle} : 1 configuration dans les données.",
        "de": "{vehicle}: 1 Ausführung in den Daten.",
    },
    "spec.header.other": {
        "en": "{vehicle}: {count} configurations in the data:",
        "es": "{vehicle}: {count} configuraciones en los datos:",
        "fr": "{vehicle} : {count} configurations dans les données :",
        "de": "{vehicle}: {count} Ausführungen in den Daten:",
    },
    "spec.more.one": {
        "en": "…and 1 more configuration; name the engine or drive to narrow it down.",
        "es": "…y 1 configuración más; indica el motor o la tracción para afinar.",
        "fr": "…et 1 configuration de plus ; précisez le moteur ou la transmission pour affiner.",
        "de": "…und 1 weitere Ausführung; nenne Motor oder Antrieb, um einzugrenzen.",
    },
    "spec.more.other": {
        "en": "…and {count} more configurations; name the engine or drive to narrow it down.",
        "es": "…y {count} configuraciones más; indica el motor o la tracción para afinar.",
        "fr": "…et {count} configurations de plus ; précisez le moteur ou la transmission pour affiner.",
        "de": "…und {count} weitere Ausführungen; nenne Motor oder Antrieb, um einzugrenzen.",
    },
    "spec.no_value": {"en": "no data", "es": "sin datos", "fr": "pas de données", "de": "keine Angabe"},
    "spec.none_for_fact": {
        "en": "The data has no {fields} for the {vehicle}.",
        "es": "Los datos no incluyen {fields} del {vehicle}.",
        "fr": "Les données ne contiennent pas {fields} pour le véhicule {vehicle}.",
        "de": "Die Daten enthalten für den {vehicle} keine Angabe zu {fields}.",
    },
    "spec.unavailable": {
        "en": (
            "I don't have {fields}: none of my datasets (EPA fuel economy, EPA test cars, NHTSA recalls) "
            "includes it, for any vehicle, and I won't guess. I can tell you MPG, electric "
            "range, horsepower, "
            "fuel cost, CO2 and recalls."
        ),
        "es": (
            "No tengo datos de {fields}: ninguno de mis conjuntos de datos (consumo EPA, vehículos de prueba "
            "EPA, llamadas a revisión NHTSA) los incluye, para ningún vehículo, y no voy a adivinar. Puedo "
            "darte MPG, autonomía eléctrica, potencia, coste de combustible, CO2 y llamadas a revisión."
        ),
        "fr": (
            "Je n'ai pas {fields} : aucune de mes données (consommation EPA, véhicules d'essai EPA, rappels "
            "NHTSA) ne le contient, pour aucun véhicule, et je ne veux pas deviner. Je peux vous donner la "
            "consommation en MPG, l'autonomie électrique, la puissance, le coût du carburant, le CO2 et les "
            "rappels."
        ),
        "de": (
            "Zu {fields} habe ich keine Daten: Keiner meiner Datensätze (EPA-Verbrauch, EPA-Testfahrzeuge, "
            "NHTSA-Rückrufe) enthält das, für kein Fahrzeug, und raten will ich nicht. Ich kann dir MPG, "
            "elektrische Reichweite, Leistung, Kraftstoffkosten, CO2 und Rückrufe nennen."
        ),
    },
    "spec.unavailable_vehicle": {
        "en": "For the {vehicle}: {text}",
        "es": "Sobre el {vehicle}: {text}",
        "fr": "Pour le véhicule {vehicle} : {text}",
        "de": "Zum {vehicle}: {text}",
    },
    "spec.ask_vehicle": {
        "en": (
            "I can't tell which vehicle you mean. Tell me the model year, make and model (for example: "
            "combined mpg of a 2019 Toyota RAV4), or send me its VIN."
        ),
        "es": (
            "No puedo saber de qué vehículo hablas. Dime el año, la marca y el modelo (por ejemplo: consumo "
            "del Toyota RAV4 2019) o envíame su VIN."
        ),
        "fr": (
            "Je ne sais pas de quel véhicule vous parlez. Donnez-moi l'année, la marque et le modèle (par "
            "exemple : consommation d'une Toyota RAV4 2019) ou envoyez-moi son VIN."
        ),
        "de": (
            "Welches Fahrzeug du meinst, kann ich nicht erkennen. Nenne mir Baujahr, Marke und Modell (zum "
            "Beispiel: Verbrauch Toyota RAV4 2019) oder schick mir die VIN."
        ),
    },
    "spec.ask_year": {
        "en": (
            "Which model year of the {vehicle}? I can't pick one for "
            "you: tell me the year, for example {example}."
        ),
        "es": "¿Qué año del {vehicle}? No puedo elegirlo por ti: dime el año, por ejemplo {example}.",
        "fr": "Quelle année pour le véhicule {vehicle} ? Je ne peux pas la choisir pour vous : précisez-la, "
        "par exemple {example}.",
        "de": "Welches Baujahr des {vehicle}? Das kann ich nicht für dich auswählen: nenne das Jahr, zum "
        "Beispiel {example}.",
    },
    "spec.not_found": {
        "en": (
            "I don't have data for the {vehicle}: no such vehicle is in the EPA data. Check the spelling, or "
            "name the make, model and model year as on the title."
        ),
        "es": (
            "No tengo datos del {vehicle}: ese vehículo no está en los datos de la EPA. Revisa cómo está "
            "escrito o indica la marca, el modelo y el año."
        ),
        "fr": (
            "Je n'ai pas de données pour le véhicule {vehicle} : il n'est pas dans les données de l'EPA. "
            "Vérifiez l'orthographe, ou indiquez la marque, le modèle et l'année."
        ),
        "de": (
            "Zum {vehicle} habe ich keine Daten: Dieses Fahrzeug ist nicht in den EPA-Daten. Prüfe die "
            "Schreibweise oder nenne Marke, Modell und Baujahr."
        ),
    },
    "spec.unknown_vehicle": {
        "en": (
            "I don't have data for that vehicle: no make and model in your question match the EPA data. "
            "Name the make, model and model year, for example: combined mpg of a 2019 Toyota RAV4."
        ),
        "es": (
            "No tengo datos de ese vehículo: ninguna marca y modelo de tu pregunta coincide con los datos de "
            "la EPA. Indica la marca, el modelo y el año, por ejemplo: consumo del Toyota RAV4 2019."
        ),
        "fr": (
            "Je n'ai pas de données pour ce véhicule : aucune marque ni aucun modèle de votre question ne "
            "correspond aux données de l'EPA. Indiquez la marque, le modèle et l'année, par exemple : "
            "consommation d'une Toyota RAV4 2019."
        ),
        "de": (
            "Zu diesem Fahrzeug habe ich keine Daten: Keine Marke und kein Modell aus deiner Frage passt zu "
            "den EPA-Daten. Nenne Marke, Modell und Baujahr, zum Beispiel: Verbrauch Toyota RAV4 2019."
        ),
    },
    "spec.year_outside": {
        "en": "I don't have data for the {vehicle}: my data covers the {model} for model years {years}.",
        "es": "No tengo datos del {vehicle}: mis datos cubren el {model} de los años {years}.",
        "fr": "Je n'ai pas de données pour le véhicule {vehicle} : mes données couvrent le {model} des "
        "années {years}.",
        "de": "Zum {vehicle} habe ich keine Daten: Meine Daten decken den {model} der Baujahre {years} ab.",
    },
    "spec.source": {
        "en": "Source: {sources}.",
        "es": "Fuente: {sources}.",
        "fr": "Source : {sources}.",
        "de": "Quelle: {sources}.",
    },
    "spec.source_line": {
        "en": "{dataset} (data of {date})",
        "es": "{dataset} (datos del {date})",
        "fr": "{dataset} (données du {date})",
        "de": "{dataset} (Datenstand {date})",
    },
    "spec.error": {
        "en": "I couldn't look that up: {message}",
        "es": "No pude consultarlo: {message}",
        "fr": "Je n'ai pas pu le consulter : {message}",
        "de": "Das konnte ich nicht nachschlagen: {message}",
    },
    "spec.unavailable_tools": {
        "en": "I can't look up vehicle data right now: the vehicle database is not available on this server.",
        "es": (
            "No puedo consultar datos de vehículos ahora: la base de datos de vehículos no está disponible."
        ),
        "fr": (
            "Je ne peux pas consulter les données des véhicules pour "
            "le moment : la base n'est pas disponible."
        ),
        "de": "Fahrzeugdaten kann ich gerade nicht nachschlagen: Die Fahrzeugdatenbank ist nicht verfügbar.",
    },
    "search.header": {
        "en": "The closest matches in the data:",
        "es": "Lo más parecido en los datos:",
        "fr": "Les résultats les plus proches dans les données :",
        "de": "Die besten Treffer in den Daten:",
    },
    "search.none": {
        "en": "I don't have data that answers that.",
        "es": "No tengo datos que respondan a eso.",
        "fr": "Je n'ai pas de données qui répondent à cela.",
        "de": "Dazu habe ich keine Daten, die das beantworten.",
    },
    "recall.header.one": {
        "en": "NHTSA lists 1 recall campaign for the {vehicle} (campaigns filed since 2020):",
        "es": "La NHTSA registra 1 llamada a revisión para el {vehicle} (campañas desde 2020):",
        "fr": "La NHTSA recense 1 campagne de rappel pour le véhicule {vehicle} (campagnes depuis 2020) :",
        "de": "Die NHTSA führt 1 Rückrufaktion für den {vehicle} (Aktionen seit 2020):",
    },
    "recall.header.other": {
        "en": "NHTSA lists {count} recall campaigns for the {vehicle} (campaigns filed since 2020):",
        "es": "La NHTSA registra {count} llamadas a revisión para el {vehicle} (campañas desde 2020):",
        "fr": (
            "La NHTSA recense {count} campagnes de rappel pour le "
            "véhicule {vehicle} (campagnes depuis 2020) :"
        ),
        "de": "Die NHTSA führt {count} Rückrufaktionen für den {vehicle} (Aktionen seit 2020):",
    },
    "recall.none": {
        "en": (
            "NHTSA lists no recall campaign filed since 2020 for the {vehicle}. Recalls filed "
            "before 2020 are "
            "not in my data."
        ),
        "es": (
            "La NHTSA no registra llamadas a revisión desde 2020 para el {vehicle}. Las anteriores a 2020 no "
            "están en mis datos."
        ),
        "fr": (
            "La NHTSA ne recense aucune campagne de rappel depuis 2020 pour le véhicule "
            "{vehicle}. Les rappels "
            "antérieurs à 2020 ne sont pas dans mes données."
        ),
        "de": (
            "Die NHTSA führt seit 2020 keine Rückrufaktion für den {vehicle}. Rückrufe vor "
            "2020 sind nicht in "
            "meinen Daten."
        ),
    },
    "recall.more.other": {
        "en": "…and {count} more campaigns.",
        "es": "…y {count} campañas más.",
        "fr": "…et {count} campagnes de plus.",
        "de": "…und {count} weitere Aktionen.",
    },
    "recall.more.one": {
        "en": "…and 1 more campaign.",
        "es": "…y 1 campaña más.",
        "fr": "…et 1 campagne de plus.",
        "de": "…und 1 weitere Aktion.",
    },
    "recall.english": {
        "en": "",
        "es": "(Resúmenes en inglés, tal como los publica la NHTSA.)",
        "fr": "(Résumés en anglais, tels que la NHTSA les publie.)",
        "de": "(Zusammenfassungen auf Englisch, wie die NHTSA sie veröffentlicht.)",
    },
    "compare.header": {
        "en": "Comparison of the {vehicles}:",
        "es": "Comparación de {vehicles}:",
        "fr": "Comparaison de {vehicles} :",
        "de": "Vergleich von {vehicles}:",
    },
    "compare.row": {
        "en": "- {field}: {values}",
        "es": "- {field}: {values}",
        "fr": "- {field} : {values}",
        "de": "- {field}: {values}",
    },
    "compare.better": {
        "en": "{field}: the {vehicle} is ahead.",
        "es": "{field}: gana el {vehicle}.",
        "fr": "{field} : avantage au véhicule {vehicle}.",
        "de": "{field}: Vorteil {vehicle}.",
    },
    "compare.differences": {
        "en": "What differs most:",
        "es": "Lo que más cambia:",
        "fr": "Les principales différences :",
        "de": "Die wichtigsten Unterschiede:",
    },
    "compare.chart": {
        "en": "A bar chart is attached.",
        "es": "Adjunto un gráfico de barras.",
        "fr": "Un graphique en barres est joint.",
        "de": "Ein Balkendiagramm ist angehängt.",
    },
    "compare.missing": {
        "en": "No data for the {vehicles}.",
        "es": "Sin datos para {vehicles}.",
        "fr": "Pas de données pour {vehicles}.",
        "de": "Keine Daten für {vehicles}.",
    },
    "unit.usd": {"en": "${value}", "es": "{value} USD", "fr": "{value} USD", "de": "{value} USD"},
    "specfact.city_mpg": {"en": "city", "es": "en ciudad", "fr": "en ville", "de": "Stadt"},
    "specfact.highway_mpg": {"en": "highway", "es": "en carretera", "fr": "sur autoroute", "de": "Autobahn"},
    "specfact.combined_mpg": {"en": "combined", "es": "combinado", "fr": "mixte", "de": "kombiniert"},
    "specfact.city_mpg_alt": {
        "en": "city on the second fuel",
        "es": "en ciudad con el segundo combustible",
        "fr": "en ville avec le second carburant",
        "de": "Stadt mit dem zweiten Kraftstoff",
    },
    "specfact.highway_mpg_alt": {
        "en": "highway on the second fuel",
        "es": "en carretera con el segundo combustible",
        "fr": "sur autoroute avec le second carburant",
        "de": "Autobahn mit dem zweiten Kraftstoff",
    },
    "specfact.combined_mpg_alt": {
        "en": "combined on the second fuel",
        "es": "combinado con el segundo combustible",
        "fr": "mixte avec le second carburant",
        "de": "kombiniert mit dem zweiten Kraftstoff",
    },
    "specfact.co2_gpm": {
        "en": "tailpipe CO2",
        "es": "CO2 del escape",
        "fr": "CO2 à l'échappement",
        "de": "CO2-Ausstoß",
    },
    "specfact.annual_fuel_cost_usd": {
        "en": "annual fuel cost",
        "es": "coste anual de combustible",
        "fr": "coût annuel en carburant",
        "de": "jährliche Kraftstoffkosten",
    },
    "specfact.five_year_savings_usd": {
        "en": "fuel savings over five years vs. the average car",
        "es": "ahorro de combustible en cinco años frente al coche medio",
        "fr": "économie de carburant sur cinq ans par rapport à la voiture moyenne",
        "de": "Kraftstoffersparnis in fünf Jahren gegenüber dem Durchschnittsauto",
    },
    "specfact.fe_score": {
        "en": "EPA fuel economy score",
        "es": "puntuación de eficiencia EPA",
        "fr": "note d'efficacité EPA",
        "de": "EPA-Verbrauchswertung",
    },
    "specfact.ghg_score": {
        "en": "EPA greenhouse gas score",
        "es": "puntuación de gases de efecto invernadero EPA",
        "fr": "note gaz à effet de serre EPA",
        "de": "EPA-Treibhausgaswertung",
    },
    "specfact.range_mi": {
        "en": "electric range",
        "es": "autonomía eléctrica",
        "fr": "autonomie électrique",
        "de": "elektrische Reichweite",
    },
    "specfact.range_city_mi": {
        "en": "electric range in the city",
        "es": "autonomía eléctrica en ciudad",
        "fr": "autonomie électrique en ville",
        "de": "elektrische Reichweite Stadt",
    },
    "specfact.range_highway_mi": {
        "en": "electric range on the highway",
        "es": "autonomía eléctrica en carretera",
        "fr": "autonomie électrique sur autoroute",
        "de": "elektrische Reichweite Autobahn",
    },
    "specfact.phev_electric_range_mi": {
        "en": "electric range (plug-in hybrid)",
        "es": "autonomía eléctrica (híbrido enchufable)",
        "fr": "autonomie électrique (hybride rechargeable)",
        "de": "elektrische Reichweite (Plug-in-Hybrid)",
    },
    "specfact.kwh_per_100mi": {
        "en": "electricity use",
        "es": "consumo eléctrico",
        "fr": "consommation électrique",
        "de": "Stromverbrauch",
    },
    "specfact.charge_hours_240v": {
        "en": "charging time at 240 V",
        "es": "tiempo de carga a 240 V",
        "fr": "temps de charge en 240 V",
        "de": "Ladezeit an 240 V",
    },
    "specfact.passenger_volume_cuft": {
        "en": "passenger volume",
        "es": "volumen de pasajeros",
        "fr": "volume passagers",
        "de": "Innenraumvolumen",
    },
    "specfact.luggage_volume_cuft": {
        "en": "luggage volume",
        "es": "volumen del maletero",
        "fr": "volume du coffre",
        "de": "Kofferraumvolumen",
    },
    "specfact.horsepower": {"en": "horsepower", "es": "potencia", "fr": "puissance", "de": "Leistung"},
    "specfact.test_weight_lbs": {
        "en": "EPA equivalent test weight (not the curb weight)",
        "es": "peso de ensayo equivalente EPA (no es el peso en vacío)",
        "fr": "poids d'essai équivalent EPA (pas le poids à vide)",
        "de": "EPA-Prüfgewicht (nicht das Leergewicht)",
    },
    "specfact.axle_ratio": {
        "en": "axle ratio",
        "es": "relación del eje",
        "fr": "rapport de pont",
        "de": "Achsübersetzung",
    },
    "specfact.gears": {"en": "gears", "es": "marchas", "fr": "rapports", "de": "Gänge"},
    "specfact.engine": {"en": "engine", "es": "motor", "fr": "moteur", "de": "Motor"},
    "specfact.ev_motor": {
        "en": "electric motor",
        "es": "motor eléctrico",
        "fr": "moteur électrique",
        "de": "Elektromotor",
    },
    "specfact.transmission": {
        "en": "transmission",
        "es": "transmisión",
        "fr": "transmission",
        "de": "Getriebe",
    },
    "specfact.drive": {"en": "drive", "es": "tracción", "fr": "transmission aux roues", "de": "Antrieb"},
    "specfact.fuel": {"en": "fuel", "es": "combustible", "fr": "carburant", "de": "Kraftstoff"},
    "specfact.vehicle_class": {
        "en": "EPA size class",
        "es": "clase de tamaño EPA",
        "fr": "catégorie EPA",
        "de": "EPA-Größenklasse",
    },
    "unavailable.towing_capacity": {
        "en": "towing capacity",
        "es": "capacidad de remolque",
        "fr": "la capacité de remorquage",
        "de": "Anhängelast",
    },
    "unavailable.payload": {"en": "payload", "es": "carga útil", "fr": "la charge utile", "de": "Nutzlast"},
    "unavailable.curb_weight": {
        "en": "curb weight",
        "es": "peso en vacío",
        "fr": "le poids à vide",
        "de": "Leergewicht",
    },
    "unavailable.dimensions": {
        "en": "exterior dimensions",
        "es": "dimensiones exteriores",
        "fr": "les dimensions extérieures",
        "de": "Außenmaße",
    },
    "unavailable.seating": {
        "en": "seating capacity",
        "es": "número de plazas",
        "fr": "le nombre de places",
        "de": "Sitzplätze",
    },
    "unavailable.torque": {"en": "torque", "es": "par motor", "fr": "le couple", "de": "Drehmoment"},
    "unavailable.msrp": {"en": "prices (MSRP)", "es": "precios", "fr": "les prix", "de": "Preise"},
    "unavailable.crash_rating": {
        "en": "crash-test ratings",
        "es": "resultados de pruebas de choque",
        "fr": "les notes de crash-tests",
        "de": "Crashtest-Bewertungen",
    },
    "unavailable.recalls_before_2020": {
        "en": "recalls filed before 2020",
        "es": "llamadas a revisión anteriores a 2020",
        "fr": "les rappels antérieurs à 2020",
        "de": "Rückrufe vor 2020",
    },
    # ------------------------------------------------------------ lists
    "list.and": {"en": " and ", "es": " y ", "fr": " et ", "de": " und "},
    "list.or": {"en": " or ", "es": " o ", "fr": " ou ", "de": " oder "},
}


def t(key: str, lang: Language, **params: object) -> str:
    """Return the message `key` in `lang`, with `params` filled in.

    Parameters a template does not use are ignored, so callers may pass the same
    set to related keys.

    Raises:
        KeyError: `key` is not in the catalogue, or its template needs a parameter
            that was not given (both are bugs, caught by the unit tests).
    """
    return MESSAGES[key][lang].format(**params)


def t_count(key: str, lang: Language, count: int, **params: object) -> str:
    """Return the singular (`<key>.one`) or plural (`<key>.other`) form of `key` for `count`."""
    form = "one" if count == 1 else "other"
    return t(f"{key}.{form}", lang, count=count, **params)


def join_list(items: list[str], lang: Language, *, conjunction: str = "list.or") -> str:
    """Join `items` as "a, b or c" (or "a, b and c" with `conjunction="list.and"`)."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + t(conjunction, lang) + items[-1]


def placeholders(template: str) -> frozenset[str]:
    """Return the names of the `str.format` placeholders in `template`."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


__all__ = ["MESSAGES", "join_list", "placeholders", "t", "t_count"]
