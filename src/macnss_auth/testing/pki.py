"""The issuing PKI, for tests: a test CSCA, document signers, CRLs and master lists.

The code lives beside the issuer in :mod:`macnss_auth.nfc.card.issuing_pki`
(the issuer is a product feature: ``card issue``, kiosks without hardware);
this module re-exports all of it under the name tests have always used.
"""

from macnss_auth.nfc.card.issuing_pki import *  # noqa: F403 (a re-export of the whole module)
from macnss_auth.nfc.card.issuing_pki import __all__  # noqa: F401 (its names, exported here)
