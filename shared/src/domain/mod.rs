//! The rules of the cabinet, free of AWS and HTTP.

mod account_number;
mod billing;
mod email;
mod full_name;
mod login;
mod password;
mod phone;
mod registration;
mod resident;
mod token;

pub use account_number::{AccountNumber, AccountNumberError, AccountNumberRef};
pub use billing::{BalanceLine, BillingAccount, Money};
pub use email::{Email, EmailDoubt, EmailError};
#[cfg(test)]
pub(crate) use full_name::is_plain_russian_name;
pub use full_name::{FullName, FullNameError, FullNameRef};
pub use login::{AddressForm, Login, LoginForm, ResetForm};
pub use password::{HashingError, Password, PasswordError, hash_password, verify_password};
pub use phone::{Phone, PhoneError};
pub use registration::{
    AddAccountForm, NewLink, NewRegistration, PRIVACY_POLICY_VERSION, RegistrationForm, UnlinkForm, account_error,
    check_doubt, email_error, parse_new_password,
};
pub use resident::{
    AccountInCabinet, AccountStage, Consent, LinkedAccount, RejectionReason, Resident, ResidentStatus, Undeliverable,
    UndeliverableReason,
};
pub use token::{RandomnessError, SecretToken, TokenHash, new_address_nonce};
